import type { ComponentChildren, InputHTMLAttributes } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ChatSnapshot, ChatState } from "../chat-state";
import { errorCode, explain } from "../errors";
import { avatarTone, initials } from "../format";

/** The chat state, re-rendering on every change. */
export function useChat(state: ChatState): ChatSnapshot {
  const [snapshot, setSnapshot] = useState(() => state.get());
  useEffect(() => {
    setSnapshot(state.get());
    return state.subscribe(() => setSnapshot(state.get()));
  }, [state]);
  return snapshot;
}

/** Which form field an error code belongs next to. */
export function fieldOf(error: unknown): string {
  switch (errorCode(error)) {
    case "invalid_email":
    case "email_taken":
      return "email";
    case "password_length":
    case "weak_password":
    case "wrong_password":
    case "invalid_credentials":
      return "password";
    case "invalid_ms_id":
    case "ms_id_unavailable":
    case "not_found":
    case "self_request":
    case "duplicate_request":
    case "already_friends":
    case "blocked":
      return "ms_id";
    case "invalid_code":
    case "code_expired":
    case "code_replayed":
    case "too_many_attempts":
      return "code";
    default:
      return "form";
  }
}

/** A form's failure: the words, and the field they belong to. */
export interface FormError {
  field: string;
  text: string;
}

export function formError(error: unknown): FormError {
  return { field: fieldOf(error), text: explain(error) };
}

/** Runs an async action with a busy flag and its error in plain words. */
export function useAction(): {
  busy: boolean;
  error: FormError | null;
  setError: (e: FormError | null) => void;
  run: (action: () => Promise<void>) => Promise<void>;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<FormError | null>(null);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      if (mounted.current) setError(formError(e));
    } finally {
      if (mounted.current) setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

export function ErrorText({ error, field, id }: { error: FormError | null; field: string; id?: string }) {
  if (!error || error.field !== field) return null;
  return (
    <p class="error" role="alert" id={id}>
      {error.text}
    </p>
  );
}

interface FieldProps {
  id: string;
  label: string;
  error?: FormError | null;
  field?: string;
  hint?: ComponentChildren;
  children?: ComponentChildren;
  input: InputHTMLAttributes<HTMLInputElement>;
}

/** A labelled input with its hint and its error right below it. */
export function Field({ id, label, error = null, field, hint, children, input }: FieldProps) {
  const name = field ?? id;
  const invalid = error?.field === name;
  const described = [hint ? `${id}-hint` : "", invalid ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} aria-invalid={invalid ? "true" : undefined} aria-describedby={described} {...input} />
      {children}
      {hint ? (
        <div class="hint" id={`${id}-hint`}>
          {hint}
        </div>
      ) : null}
      <ErrorText error={error} field={name} id={`${id}-error`} />
    </div>
  );
}

export function Avatar({ id, name, online, size = "md" }: { id: number; name: string; online?: boolean; size?: "sm" | "md" | "lg" }) {
  return (
    <span class={`avatar avatar-${size} tone-${avatarTone(id)}`} aria-hidden="true">
      {initials(name)}
      {online === undefined ? null : <span class={online ? "dot dot-online" : "dot dot-offline"} />}
    </span>
  );
}

export function Logo() {
  return (
    <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="8" class="logo-bg" />
      <path d="M9 11a4 4 0 0 1 4-4h6a4 4 0 0 1 4 4v5a4 4 0 0 1-4 4h-5l-5 4v-4.5A4 4 0 0 1 9 16z" class="logo-fg" />
    </svg>
  );
}

type IconName = "chat" | "people" | "gear" | "back" | "send" | "logout" | "plus" | "check" | "x" | "lock" | "clip" | "file";

const PATHS: Record<IconName, string> = {
  chat: "M4 5h16v11H8l-4 4z",
  people: "M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm-6 8c0-3 3-5 6-5s6 2 6 5M16 11a3 3 0 1 0 0-6M18 14c2 .5 3.5 2 3.5 5",
  gear: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM19 12l2-1-1-3-2 .3-1.3-1.3L17 5l-3-1-1 2h-2l-1-2-3 1 .3 2L6 8.3 4 8l-1 3 2 1v0l-2 1 1 3 2-.3 1.3 1.3L7 19l3 1 1-2h2l1 2 3-1-.3-2 1.3-1.3 2 .3 1-3z",
  back: "M15 5l-7 7 7 7",
  send: "M4 12l16-8-6 16-2-7z",
  logout: "M10 5H5v14h5M14 8l4 4-4 4M18 12H9",
  plus: "M12 5v14M5 12h14",
  check: "M5 12l5 5 9-10",
  x: "M6 6l12 12M18 6L6 18",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v9H5z",
  clip: "M20 11l-8 8a5 5 0 0 1-7-7l8-8a3.5 3.5 0 0 1 5 5l-8 8a2 2 0 0 1-3-3l7-7",
  file: "M7 3h7l5 5v13H7zM14 3v5h5",
};

export function Icon({ name }: { name: IconName }) {
  return (
    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true">
      <path d={PATHS[name]} />
    </svg>
  );
}
