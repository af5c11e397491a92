// Sign up, log in, the second factor and unlock: everything before the chat.

import type { SecondFactor, SecureChatClient } from "securechat-client";
import { useEffect, useRef, useState } from "preact/hooks";
import { errorCode, explain } from "../errors";
import { measure, loadEstimator } from "../password";
import { msIdProblem, normalEmail, type Strength } from "../rules";
import { discard, finishSignIn, forgetLast, openForAccount, unlock, type Opened } from "../session";
import { ErrorText, Field, Logo, formError, useAction, type FormError } from "./common";

/** What the screens hand back: an unlocked client, signed in, and its store's name. */
export type SignedIn = (client: SecureChatClient, name: string) => void;

function Shell({ title, subtitle, children }: { title: string; subtitle?: string; children: preact.ComponentChildren }) {
  return (
    <main class="auth">
      <div class="auth-card">
        <div class="auth-brand">
          <Logo />
          <span>SecureChat</span>
        </div>
        <h1>{title}</h1>
        {subtitle ? <p class="muted">{subtitle}</p> : null}
        {children}
      </div>
      <p class="auth-foot muted">Messages are encrypted on this device. The server only sees ciphertext.</p>
    </main>
  );
}

function RememberMe({ value, onChange }: { value: boolean; onChange: (v: boolean) => void }) {
  return (
    <div class="check">
      <input id="remember" type="checkbox" checked={value} onChange={(e) => onChange(e.currentTarget.checked)} />
      <label for="remember">
        Remember me on this device
        <span class="hint">Opens without your password after a reload. Leave off on shared computers.</span>
      </label>
    </div>
  );
}

type Availability = { state: "idle" | "checking"; text?: undefined } | { state: "available" | "taken" | "invalid" | "error"; text: string };

/** Asks the relay whether an ms_id is free (GET /api/v1/ms_ids/{id}, no session needed). */
async function checkAvailability(msId: string, signal: AbortSignal): Promise<Availability> {
  const response = await fetch(`/api/v1/ms_ids/${encodeURIComponent(msId)}`, { signal });
  if (response.ok) {
    const body = (await response.json()) as { ms_id: string; available: boolean };
    return body.available
      ? { state: "available", text: `@${body.ms_id} is available.` }
      : { state: "taken", text: `@${body.ms_id} is taken. Try another one.` };
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  const retry = Number(response.headers.get("Retry-After") ?? "");
  const error = { code: body.error ?? "bad_response", ...(Number.isFinite(retry) && retry > 0 ? { retryAfter: retry } : {}) };
  return { state: body.error === "invalid_ms_id" ? "invalid" : "error", text: explain(error) };
}

function StrengthMeter({ strength, loading }: { strength: Strength | null; loading: boolean }) {
  const score = strength?.score ?? 0;
  return (
    <div class="meter-wrap" aria-live="polite">
      <div class={`meter score-${strength ? score : "none"}`} role="meter" aria-label="Password strength" aria-valuemin={0} aria-valuemax={4} aria-valuenow={score} aria-valuetext={strength?.label ?? "empty"}>
        <span />
        <span />
        <span />
        <span />
      </div>
      <span class={strength?.acceptable ? "meter-label ok" : "meter-label"}>
        {loading ? "Checking…" : (strength?.label ?? "8 characters or more; a few unusual words work well")}
      </span>
      {strength?.hint ? <span class="meter-hint">{strength.hint}</span> : null}
    </div>
  );
}

export function SignUp({ onSignedIn, onLogIn }: { onSignedIn: SignedIn; onLogIn: () => void }) {
  const [email, setEmail] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [msId, setMsId] = useState("");
  const [password, setPassword] = useState("");
  const [remember, setRemember] = useState(false);
  const [strength, setStrength] = useState<Strength | null>(null);
  const [measuring, setMeasuring] = useState(false);
  const [availability, setAvailability] = useState<Availability>({ state: "idle" });
  const { busy, error, setError, run } = useAction();

  useEffect(() => {
    void loadEstimator();
  }, []);

  useEffect(() => {
    if (!password) {
      setStrength(null);
      return;
    }
    let live = true;
    setMeasuring(true);
    const timer = setTimeout(() => {
      measure(password, [email, msId, displayName])
        .then((s) => live && setStrength(s))
        .catch(() => live && setStrength(null))
        .finally(() => live && setMeasuring(false));
    }, 120);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [password, email, msId, displayName]);

  useEffect(() => {
    const wanted = msId.trim();
    if (!wanted) {
      setAvailability({ state: "idle" });
      return;
    }
    const problem = msIdProblem(wanted);
    if (problem) {
      setAvailability({ state: "invalid", text: problem });
      return;
    }
    const controller = new AbortController();
    setAvailability({ state: "checking" });
    const timer = setTimeout(() => {
      checkAvailability(wanted, controller.signal)
        .then(setAvailability)
        .catch((e: unknown) => {
          if (!controller.signal.aborted) setAvailability({ state: "error", text: explain({ code: "network", e }) });
        });
    }, 350);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [msId]);

  const submit = (event: Event) => {
    event.preventDefault();
    const normal = normalEmail(email);
    if (!normal) return setError({ field: "email", text: explain({ code: "invalid_email" }) });
    if (!displayName.trim()) return setError({ field: "display_name", text: "Enter the name your friends will see." });
    const problem = msIdProblem(msId.trim());
    if (problem) return setError({ field: "ms_id", text: problem });
    if (strength && !strength.acceptable) return setError({ field: "password", text: strength.hint ?? explain({ code: "weak_password" }) });
    void run(async () => {
      const opened = await openForAccount(normal, password, remember);
      try {
        await opened.client.register(normal, password, msId.trim(), displayName.trim());
        const outcome = await opened.client.login(normal, password);
        if (outcome.status !== "signed_in") throw new Error("the new account asks for a second factor");
        await finishSignIn(opened);
      } catch (e) {
        await discard(opened);
        throw e;
      }
      onSignedIn(opened.client, opened.name);
    });
  };

  const availabilityText =
    availability.state === "idle" ? (
      "Your public name for friend requests. Friends find you by it."
    ) : availability.state === "checking" ? (
      "Checking…"
    ) : (
      <span class={`availability ${availability.state}`}>{availability.text}</span>
    );

  return (
    <Shell title="Create your account" subtitle="Free, private, end-to-end encrypted.">
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <Field id="email" label="E-mail" error={error} input={{ type: "email", autocomplete: "email", value: email, onInput: (e) => setEmail(e.currentTarget.value), required: true }} />
        <Field id="display_name" label="Display name" error={error} input={{ type: "text", autocomplete: "name", maxLength: 64, value: displayName, onInput: (e) => setDisplayName(e.currentTarget.value), required: true }} />
        <Field id="ms_id" label="ms_id" error={error} hint={availabilityText} input={{ type: "text", autocomplete: "username", autocapitalize: "none", spellcheck: false, maxLength: 32, value: msId, onInput: (e) => setMsId(e.currentTarget.value), required: true }} />
        <Field id="password" label="Password" error={error} input={{ type: "password", autocomplete: "new-password", value: password, onInput: (e) => setPassword(e.currentTarget.value), required: true }}>
          <StrengthMeter strength={strength} loading={measuring && !strength} />
        </Field>
        <RememberMe value={remember} onChange={setRemember} />
        <ErrorText error={error} field="form" />
        <button class="primary wide" type="submit" disabled={busy}>
          {busy ? "Creating your keys…" : "Create account"}
        </button>
      </form>
      <p class="switch">
        Already have an account?{" "}
        <button type="button" class="link" onClick={onLogIn}>
          Log in
        </button>
      </p>
    </Shell>
  );
}

export function LogIn({
  onSignedIn,
  onSignUp,
  onSecondFactor,
  notice,
}: {
  onSignedIn: SignedIn;
  onSignUp: () => void;
  onSecondFactor: (opened: Opened, challenge: string, methods: SecondFactor[]) => void;
  notice?: string;
}) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [remember, setRemember] = useState(false);
  const { busy, error, setError, run } = useAction();

  const submit = (event: Event) => {
    event.preventDefault();
    const normal = normalEmail(email);
    if (!normal) return setError({ field: "email", text: explain({ code: "invalid_email" }) });
    if (!password) return setError({ field: "password", text: "Enter your password." });
    void run(async () => {
      const opened = await openForAccount(normal, password, remember);
      let outcome;
      try {
        outcome = await opened.client.login(normal, password);
      } catch (e) {
        await discard(opened);
        throw e;
      }
      if (outcome.status === "second_factor_required") {
        onSecondFactor(opened, outcome.challenge, outcome.methods);
        return;
      }
      await finishSignIn(opened);
      onSignedIn(opened.client, opened.name);
    });
  };

  return (
    <Shell title="Welcome back" subtitle="Log in to read and send messages.">
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <Field id="email" label="E-mail" error={error} input={{ type: "email", autocomplete: "email", value: email, onInput: (e) => setEmail(e.currentTarget.value), required: true }} />
        <Field id="password" label="Password" error={error} input={{ type: "password", autocomplete: "current-password", value: password, onInput: (e) => setPassword(e.currentTarget.value), required: true }} />
        <RememberMe value={remember} onChange={setRemember} />
        <ErrorText error={error} field="form" />
        <button class="primary wide" type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
      <p class="switch">
        New here?{" "}
        <button type="button" class="link" onClick={onSignUp}>
          Create an account
        </button>
      </p>
    </Shell>
  );
}

const METHOD_NAMES: Record<SecondFactor, string> = { totp: "Authenticator app", email: "E-mail code", recovery: "Recovery code" };

export function TwoFactor({
  opened,
  challenge,
  methods,
  onSignedIn,
  onCancel,
}: {
  opened: Opened;
  challenge: string;
  methods: SecondFactor[];
  onSignedIn: SignedIn;
  onCancel: (notice?: string) => void;
}) {
  const [method, setMethod] = useState<SecondFactor>(methods[0] ?? "totp");
  const [code, setCode] = useState("");
  const [mailed, setMailed] = useState(false);
  const { busy, error, setError, run } = useAction();
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => input.current?.focus(), [method]);

  const sendMail = () =>
    run(async () => {
      await opened.client.sendLoginEmailCode(challenge);
      setMailed(true);
    });

  const submit = (event: Event) => {
    event.preventDefault();
    const trimmed = code.replace(/\s+/gu, "");
    if (!trimmed) return setError({ field: "code", text: "Enter the code." });
    void run(async () => {
      try {
        await opened.client.completeSecondFactor(challenge, method, trimmed);
      } catch (e) {
        if (errorCode(e) === "invalid_challenge") {
          await discard(opened);
          onCancel(explain(e));
          return;
        }
        throw e;
      }
      await finishSignIn(opened);
      onSignedIn(opened.client, opened.name);
    });
  };

  const cancel = async () => {
    await discard(opened);
    onCancel();
  };

  return (
    <Shell title="Two-step sign-in" subtitle="Your account is protected with a second step.">
      {methods.length > 1 ? (
        <div class="segmented" role="tablist" aria-label="How to confirm">
          {methods.map((m) => (
            <button
              key={m}
              type="button"
              role="tab"
              aria-selected={m === method}
              class={m === method ? "active" : ""}
              onClick={() => {
                setMethod(m);
                setCode("");
                setError(null);
              }}
            >
              {METHOD_NAMES[m]}
            </button>
          ))}
        </div>
      ) : null}
      <form onSubmit={submit} noValidate aria-busy={busy}>
        {method === "email" ? (
          <div class="field">
            <button type="button" class="secondary" onClick={() => void sendMail()} disabled={busy}>
              {mailed ? "Send another code" : "E-mail me a code"}
            </button>
            {mailed ? <p class="hint">Sent. Check your inbox; the code is valid for a few minutes.</p> : null}
          </div>
        ) : null}
        <div class="field">
          <label for="code">
            {method === "totp" ? "6-digit code from your authenticator app" : method === "email" ? "Code from the e-mail" : "One of your recovery codes"}
          </label>
          <input
            id="code"
            ref={input}
            type="text"
            inputMode={method === "recovery" ? "text" : "numeric"}
            autocomplete="one-time-code"
            autocapitalize="none"
            spellcheck={false}
            value={code}
            aria-invalid={error?.field === "code" ? "true" : undefined}
            aria-describedby={error?.field === "code" ? "code-error" : undefined}
            onInput={(e) => setCode(e.currentTarget.value)}
          />
          <ErrorText error={error} field="code" id="code-error" />
        </div>
        <ErrorText error={error} field="form" />
        <button class="primary wide" type="submit" disabled={busy}>
          {busy ? "Checking…" : "Confirm"}
        </button>
      </form>
      <p class="switch">
        <button type="button" class="link" onClick={() => void cancel()}>
          Back to log in
        </button>
      </p>
    </Shell>
  );
}

export function Unlock({ name, onUnlocked, onOtherAccount }: { name: string; onUnlocked: SignedIn; onOtherAccount: () => void }) {
  const [password, setPassword] = useState("");
  const [remember, setRemember] = useState(false);
  const { busy, error, setError, run } = useAction();

  const submit = (event: Event) => {
    event.preventDefault();
    if (!password) return setError({ field: "password", text: "Enter your password." });
    void run(async () => {
      const client = await unlock(name, password, remember);
      onUnlocked(client, name);
    });
  };

  return (
    <Shell title="Unlock SecureChat" subtitle="Your messages on this device are locked. Enter your password to open them.">
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <Field id="password" label="Password" error={error} input={{ type: "password", autocomplete: "current-password", value: password, onInput: (e) => setPassword(e.currentTarget.value), autoFocus: true }} />
        <RememberMe value={remember} onChange={setRemember} />
        <ErrorText error={error} field="form" />
        <button class="primary wide" type="submit" disabled={busy}>
          {busy ? "Unlocking…" : "Unlock"}
        </button>
      </form>
      <p class="switch">
        <button
          type="button"
          class="link"
          onClick={() => {
            forgetLast();
            onOtherAccount();
          }}
        >
          Use another account
        </button>
      </p>
    </Shell>
  );
}

export { formError, type FormError };
