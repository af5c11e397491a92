// The meter against the verdicts the relay's own tests pin (relay-server/src/services/passwords.rs
// and tests/bad_input.rs): what the relay refuses, the meter must not call acceptable.
import { describe, expect, it } from "vitest";
import { measure } from "./password";

describe("password meter agrees with the relay", () => {
  it("refuses the relay's weak examples", async () => {
    expect((await measure("password123", [])).acceptable).toBe(false);
    expect((await measure("zq.wexrtomb", ["zq.wexrtomb"])).acceptable).toBe(false);
    expect((await measure("davedavedave", ["d@example.org", "davedavedave", "D"])).acceptable).toBe(false);
    expect((await measure("short", [])).acceptable).toBe(false);
  });

  it("accepts the relay's strong examples", async () => {
    expect((await measure("correct horse battery staple", [])).acceptable).toBe(true);
    expect((await measure("long enough passphrase here", ["a@example.org", "alice", "Alice"])).acceptable).toBe(true);
  });
});
