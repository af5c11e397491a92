import { describe, expect, it } from "vitest";
import { errorCode, explain, waitWords } from "./errors";

const clientError = (code: string, extra: object = {}) => Object.assign(new Error("relay text"), { name: "SecureChatError", code, ...extra });

describe("errors in plain words", () => {
  it("explains relay codes without the developer message", () => {
    expect(explain(clientError("invalid_credentials"))).toBe("Wrong e-mail address or password.");
    expect(explain(clientError("ms_id_unavailable"))).toBe("This ms_id is taken. Try another one.");
    expect(explain(clientError("wrong_password"))).toBe("Wrong password.");
  });

  it("says how long to wait on rate limits", () => {
    expect(explain(clientError("rate_limited", { retryAfter: 42 }))).toBe("Too many tries. Try again in 42 seconds.");
    expect(explain(clientError("rate_limited", { retryAfter: 600 }))).toBe("Too many tries. Try again in 10 minutes.");
    expect(explain(clientError("rate_limited"))).toBe("Too many tries. Wait a little, then try again.");
    expect(explain(clientError("unavailable", { retryAfter: 1 }))).toMatch(/Try again in 1 second\.$/u);
  });

  it("does not take unknown codes or foreign errors for the client's", () => {
    expect(errorCode(clientError("made_up"))).toBeUndefined();
    expect(explain(new TypeError("boom"))).toBe("Something went wrong: boom");
    expect(explain("nope")).toBe("Something went wrong.");
  });

  it("rounds waits to words", () => {
    expect(waitWords(0.2)).toBe("1 second");
    expect(waitWords(89)).toBe("89 seconds");
    expect(waitWords(90)).toBe("2 minutes");
  });
});
