// The relay's input rules (relay-server/src/services/validate.rs and passwords.rs), checked
// while the user types so that most mistakes are explained before anything is sent. The relay
// still decides; its answer is shown next to the field too.

export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_CHARS = 128;
export const MAX_DISPLAY_NAME_CHARS = 64;
/** The lowest zxcvbn score the relay accepts (0–4). */
export const MIN_PASSWORD_SCORE = 2;

/** What is wrong with a new ms_id, or `null` (the relay lowercases it). */
export function msIdProblem(raw: string): string | null {
  const id = raw.toLowerCase();
  if (id.length < 3) return "At least 3 characters.";
  if (id.length > 32) return "At most 32 characters.";
  if (!/^[a-z0-9._-]+$/u.test(id)) return "Only letters a–z, digits, dots, dashes and underscores.";
  if (!/^[a-z0-9]/u.test(id) || !/[a-z0-9]$/u.test(id)) return "Start and end with a letter or digit.";
  if (/[._-]{2}/u.test(id)) return "No two of . _ - in a row.";
  return null;
}

/** The e-mail shape the relay accepts (trimmed, lowercased), or `null`. */
export function normalEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  if (email.length === 0 || email.length > 254 || !/^[\x21-\x7e]+$/u.test(email)) return null;
  const parts = email.split("@");
  if (parts.length !== 2) return null;
  const [local = "", domain = ""] = parts;
  const domainOk = domain.includes(".") && !domain.startsWith(".") && !domain.endsWith(".") && !domain.includes("..");
  if (local.length === 0 || local.length > 64 || !domainOk) return null;
  return email;
}

/** The length rule, in characters (code points, as the relay counts them). */
export function passwordLengthProblem(password: string): string | null {
  const n = [...password].length;
  if (n < MIN_PASSWORD_CHARS) return `At least ${MIN_PASSWORD_CHARS} characters (${n} so far).`;
  if (n > MAX_PASSWORD_CHARS) return `At most ${MAX_PASSWORD_CHARS} characters.`;
  return null;
}

export interface Strength {
  /** 0–4 (zxcvbn); the relay refuses below [`MIN_PASSWORD_SCORE`]. */
  score: number;
  /** Whether the relay's rules accept it (length and score). */
  acceptable: boolean;
  /** One short line for the meter. */
  label: string;
  /** A hint to make it stronger, if any. */
  hint: string | null;
}

const LABELS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];

/** The meter's verdict from a zxcvbn score and its first suggestion. */
export function strength(password: string, score: number, suggestion: string | null): Strength {
  const lengthProblem = passwordLengthProblem(password);
  const acceptable = lengthProblem === null && score >= MIN_PASSWORD_SCORE;
  const s = Math.max(0, Math.min(4, Math.trunc(score)));
  return {
    score: lengthProblem && s > 1 ? 1 : s,
    acceptable,
    label: lengthProblem ? "Too short" : (LABELS[s] ?? ""),
    hint: lengthProblem ?? (acceptable ? null : (suggestion ?? "Add another word or two.")),
  };
}
