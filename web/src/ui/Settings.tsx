// Settings: profile and ms_id, two-step sign-in with an authenticator app, sessions.

import type { SessionInfo, TotpSetup } from "securechat-client";
import { useEffect, useState } from "preact/hooks";
import type { ChatSnapshot, ChatState } from "../chat-state";
import { fromSeconds, listTime } from "../format";
import { msIdProblem } from "../rules";
import { deviceName } from "../session";
import { ErrorText, Field, useAction } from "./common";
import { PaneHead } from "./Friends";

/** "JBSW Y3DP EHPK 3PXP": a secret in groups of four, easier to type. */
export function groupSecret(secret: string): string {
  return secret.replace(/\s+/gu, "").replace(/(.{4})/gu, "$1 ").trim();
}

function Profile({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  const [msId, setMsId] = useState(chat.me.ms_id);
  const [done, setDone] = useState(false);
  const { busy, error, setError, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    setDone(false);
    const problem = msIdProblem(msId.trim());
    if (problem) return setError({ field: "ms_id", text: problem });
    void run(async () => {
      state.setMe(await state.client.changeMsId(msId.trim()));
      setDone(true);
    });
  };
  return (
    <form class="card" onSubmit={submit} noValidate aria-busy={busy}>
      <h3>Profile</h3>
      <dl class="facts">
        <dt>Display name</dt>
        <dd>{chat.me.display_name}</dd>
        <dt>E-mail</dt>
        <dd>
          {chat.me.email} {chat.me.email_verified ? <span class="tag ok">verified</span> : <span class="tag">not verified</span>}
        </dd>
      </dl>
      <Field id="settings-ms-id" field="ms_id" label="ms_id" error={error} hint="Friends find you by it. Your old ms_id is held for you for 30 days." input={{ type: "text", autocapitalize: "none", spellcheck: false, maxLength: 32, value: msId, onInput: (e) => setMsId(e.currentTarget.value) }} />
      <ErrorText error={error} field="form" />
      {done ? (
        <p class="success" role="status">
          Your ms_id is now @{chat.me.ms_id}.
        </p>
      ) : null}
      <button type="submit" class="secondary" disabled={busy || msId.trim().toLowerCase() === chat.me.ms_id}>
        Change ms_id
      </button>
    </form>
  );
}

function RecoveryCodes({ codes }: { codes: string[] }) {
  const [copied, setCopied] = useState(false);
  const text = `SecureChat recovery codes\n${codes.join("\n")}\n`;
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "securechat-recovery-codes.txt";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <div class="recovery" role="region" aria-label="Recovery codes">
      <p>
        <strong>Save these recovery codes now.</strong> Each one signs you in once if you lose your phone. They are shown only this time.
      </p>
      <ul class="codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <div class="row">
        <button
          type="button"
          class="secondary"
          onClick={() =>
            void navigator.clipboard.writeText(text).then(
              () => setCopied(true),
              () => setCopied(false),
            )
          }
        >
          {copied ? "Copied" : "Copy"}
        </button>
        <button type="button" class="secondary" onClick={download}>
          Download
        </button>
      </div>
    </div>
  );
}

function TwoStep({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  const [password, setPassword] = useState("");
  const [setup, setSetup] = useState<TotpSetup | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const { busy, error, setError, run } = useAction();

  if (chat.me.totp_enabled && !setup) {
    return (
      <div class="card">
        <h3>Two-step sign-in</h3>
        <p>
          <span class="tag ok">On</span> Logging in asks for a code from your authenticator app.
        </p>
        {codes ? <RecoveryCodes codes={codes} /> : null}
      </div>
    );
  }

  const start = (event: Event) => {
    event.preventDefault();
    if (!password) return setError({ field: "password", text: "Enter your password." });
    void run(async () => {
      setSetup(await state.client.totpSetup(password));
      setPassword("");
    });
  };

  const activate = (event: Event) => {
    event.preventDefault();
    const trimmed = code.replace(/\s+/gu, "");
    if (!/^\d{6}$/u.test(trimmed)) return setError({ field: "code", text: "Enter the 6 digits your app shows." });
    void run(async () => {
      const recovery = await state.client.totpActivate(trimmed);
      setCodes(recovery ?? []);
      setSetup(null);
      setCode("");
      state.setMe(await state.client.me());
    });
  };

  return (
    <div class="card">
      <h3>Two-step sign-in</h3>
      {setup === null ? (
        <form onSubmit={start} noValidate aria-busy={busy}>
          <p class="muted">Protect your account with codes from an authenticator app (such as Aegis, 2FAS or Google Authenticator).</p>
          <Field id="totp-password" field="password" label="Your password, to confirm" error={error} input={{ type: "password", autocomplete: "current-password", value: password, onInput: (e) => setPassword(e.currentTarget.value) }} />
          <ErrorText error={error} field="form" />
          <button type="submit" class="primary" disabled={busy}>
            Set up authenticator app
          </button>
        </form>
      ) : (
        <form onSubmit={activate} noValidate aria-busy={busy}>
          <ol class="steps">
            <li>Scan this QR code with your authenticator app.</li>
          </ol>
          <img class="qr" src={`data:image/png;base64,${setup.qr_png_base64}`} alt="QR code for your authenticator app" width={200} height={200} />
          <p class="muted">Cannot scan? Enter this secret instead:</p>
          <p>
            <code class="secret" data-testid="totp-secret" data-secret={setup.secret}>
              {groupSecret(setup.secret)}
            </code>
          </p>
          <ol class="steps" start={2}>
            <li>Enter the 6-digit code the app shows.</li>
          </ol>
          <Field id="totp-code" field="code" label="Code from the app" error={error} input={{ type: "text", inputMode: "numeric", autocomplete: "one-time-code", value: code, onInput: (e) => setCode(e.currentTarget.value) }} />
          <ErrorText error={error} field="form" />
          <div class="row">
            <button type="submit" class="primary" disabled={busy}>
              Turn on
            </button>
            <button type="button" class="secondary" onClick={() => setSetup(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {codes ? <RecoveryCodes codes={codes} /> : null}
    </div>
  );
}

function Sessions({ state }: { state: ChatState }) {
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const { busy, error, run } = useAction();
  const load = () => run(async () => setSessions(await state.client.sessions()));
  useEffect(() => {
    void load();
  }, []);
  return (
    <div class="card">
      <h3>Where you are logged in</h3>
      <ErrorText error={error} field="form" />
      {sessions === null ? (
        <p class="muted">Loading…</p>
      ) : (
        <ul class="people" aria-label="Sessions">
          {sessions.map((s) => (
            <li class="person" key={s.id}>
              <span class="person-text">
                <strong>
                  {s.user_agent ? deviceName(s.user_agent) : "Unknown app"} {s.current ? <span class="tag ok">this device</span> : null}
                </strong>
                <span class="muted">
                  Signed in {listTime(fromSeconds(s.created_at))} · last active {listTime(fromSeconds(s.last_used_at))}
                </span>
              </span>
              {s.current ? null : (
                <span class="person-actions">
                  <button type="button" class="secondary small" disabled={busy} onClick={() => void run(async () => {
                    await state.client.revokeSession(s.id);
                    setSessions(await state.client.sessions());
                  })}>
                    Log out
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Settings({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  return (
    <section class="panel" aria-label="Settings">
      <PaneHead title="Settings" state={state} />
      <div class="panel-body">
        <Profile state={state} chat={chat} />
        <TwoStep state={state} chat={chat} />
        <Sessions state={state} />
      </div>
    </section>
  );
}
