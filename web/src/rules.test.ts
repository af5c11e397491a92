import { describe, expect, it } from "vitest";
import { msIdProblem, normalEmail, passwordLengthProblem, strength } from "./rules";

describe("ms_id rules (as relay-server/src/services/validate.rs)", () => {
  it("accepts what the relay accepts", () => {
    for (const ok of ["ada", "Ada", "a.b", "a-b_c", "x".repeat(32), "abc123"]) expect(msIdProblem(ok)).toBeNull();
  });

  it("refuses what the relay refuses, saying why", () => {
    expect(msIdProblem("ab")).toMatch(/At least 3/u);
    expect(msIdProblem("x".repeat(33))).toMatch(/At most 32/u);
    expect(msIdProblem("ad a")).toMatch(/Only letters/u);
    expect(msIdProblem("аda")).toMatch(/Only letters/u); // Cyrillic а
    expect(msIdProblem(".ada")).toMatch(/Start and end/u);
    expect(msIdProblem("ada-")).toMatch(/Start and end/u);
    expect(msIdProblem("a._b")).toMatch(/in a row/u);
  });
});

describe("e-mail shape", () => {
  it("trims and lowercases", () => {
    expect(normalEmail("  Ada@Example.ORG ")).toBe("ada@example.org");
  });
  it("refuses what the relay refuses", () => {
    for (const bad of ["", "ada", "ada@", "@x.org", "a@b", "a@.b.c", "a@b.c.", "a@b..c", "a b@c.d", "a@b@c.d", `${"a".repeat(65)}@b.c`]) {
      expect(normalEmail(bad)).toBeNull();
    }
  });
});

describe("password rules", () => {
  it("counts characters as the relay does (code points)", () => {
    expect(passwordLengthProblem("1234567")).toMatch(/At least 8/u);
    expect(passwordLengthProblem("12345678")).toBeNull();
    expect(passwordLengthProblem("😀".repeat(8))).toBeNull();
    expect(passwordLengthProblem("x".repeat(129))).toMatch(/At most 128/u);
  });

  it("accepts a score of 2 or more with a valid length, like the relay", () => {
    expect(strength("correct horse battery staple", 4, null)).toMatchObject({ acceptable: true, label: "Very strong", hint: null });
    expect(strength("fairpass1", 2, null)).toMatchObject({ acceptable: true, label: "Fair" });
    expect(strength("password1", 1, "This is a very common password.")).toMatchObject({ acceptable: false, hint: "This is a very common password." });
    expect(strength("Xy7#", 4, null)).toMatchObject({ acceptable: false, label: "Too short", score: 1 });
  });
});
