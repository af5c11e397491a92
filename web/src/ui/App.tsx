// Which screen shows: boot → (sign up | log in → second factor | unlock) → the messenger.

import type { SecondFactor, SecureChatClient } from "securechat-client";
import { useEffect, useState } from "preact/hooks";
import { ChatState } from "../chat-state";
import { errorCode, explain } from "../errors";
import { forgetLast, logOut, resume, type Opened } from "../session";
import { LogIn, SignUp, TwoFactor, Unlock } from "./Auth";
import { Main } from "./Main";

type Screen =
  | { kind: "boot" }
  | { kind: "login"; notice?: string }
  | { kind: "signup" }
  | { kind: "twofactor"; opened: Opened; challenge: string; methods: SecondFactor[] }
  | { kind: "unlock"; name: string }
  | { kind: "main"; state: ChatState; name: string }
  | { kind: "failed"; text: string };

export function App() {
  const [screen, setScreen] = useState<Screen>({ kind: "boot" });

  useEffect(() => {
    if (screen.kind !== "boot") {
      // The first screen is up and can be used (ms since navigation): the end-to-end test
      // reads it.
      document.body.dataset.ready ??= String(Math.round(performance.now()));
    }
  }, [screen.kind]);

  /** An unlocked client: check the relay session, then show the messenger. */
  const enter = async (client: SecureChatClient, name: string) => {
    try {
      const me = await client.me();
      const state = new ChatState(client, me);
      setScreen({ kind: "main", state, name });
      void state.start().catch((e: unknown) => state.notice(e));
    } catch (e) {
      const code = errorCode(e);
      if (code === "unauthorized" || code === "not_signed_in" || code === "no_device") {
        client.free();
        forgetLast();
        setScreen({ kind: "login", notice: "Your session ended. Log in again to continue." });
      } else {
        // The relay cannot be reached (or failed): say so, with a way to try again.
        setScreen({ kind: "failed", text: explain(e) });
      }
    }
  };

  useEffect(() => {
    resume()
      .then(async (r) => {
        if (r.kind === "open") await enter(r.client, r.name);
        else if (r.kind === "locked") setScreen({ kind: "unlock", name: r.name });
        else setScreen({ kind: "login" });
      })
      .catch((e: unknown) => setScreen({ kind: "failed", text: explain(e) }));
  }, []);

  switch (screen.kind) {
    case "boot":
      return <p class="boot">Opening SecureChat…</p>;
    case "failed":
      return (
        <main class="auth">
          <div class="auth-card">
            <h1>SecureChat cannot start</h1>
            <p class="error" role="alert">
              {screen.text}
            </p>
            <button type="button" class="primary" onClick={() => location.reload()}>
              Try again
            </button>
          </div>
        </main>
      );
    case "login":
      return (
        <LogIn
          notice={screen.notice}
          onSignedIn={(c, n) => void enter(c, n)}
          onSignUp={() => setScreen({ kind: "signup" })}
          onSecondFactor={(opened, challenge, methods) => setScreen({ kind: "twofactor", opened, challenge, methods })}
        />
      );
    case "signup":
      return <SignUp onSignedIn={(c, n) => void enter(c, n)} onLogIn={() => setScreen({ kind: "login" })} />;
    case "twofactor":
      return (
        <TwoFactor
          opened={screen.opened}
          challenge={screen.challenge}
          methods={screen.methods}
          onSignedIn={(c, n) => void enter(c, n)}
          onCancel={(notice) => setScreen({ kind: "login", notice })}
        />
      );
    case "unlock":
      return <Unlock name={screen.name} onUnlocked={(c, n) => void enter(c, n)} onOtherAccount={() => setScreen({ kind: "login" })} />;
    case "main":
      return (
        <Main
          state={screen.state}
          onLogOut={() => {
            const { state, name } = screen;
            void logOut(state.client, name)
              .catch(() => undefined)
              .finally(() => {
                state.client.free();
                setScreen({ kind: "login", notice: "You are logged out. Your messages stay encrypted on this device." });
              });
          }}
        />
      );
  }
}
