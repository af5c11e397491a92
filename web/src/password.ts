// The live strength meter: zxcvbn-ts with its common-password and keyboard-pattern lists, as
// the relay's zxcvbn does, scored against the same user inputs (e-mail, ms_id, display name).
// The dictionaries are large, so they load in their own chunk when the sign-up form opens.

import { strength, type Strength } from "./rules";

type Estimator = (password: string, userInputs: string[]) => { score: number; suggestion: string | null };

let loading: Promise<Estimator> | undefined;

/** Loads zxcvbn and its dictionaries once. */
export function loadEstimator(): Promise<Estimator> {
  loading ??= (async () => {
    // English first names and Wikipedia words as the relay's list has them; the much larger
    // English common-words and last-name lists are left out (475 KB gzip for little gain).
    const [{ ZxcvbnFactory }, common, firstnames, wikipedia, wordSequences, translations] = await Promise.all([
      import("@zxcvbn-ts/core"),
      import("@zxcvbn-ts/language-common"),
      import("@zxcvbn-ts/language-en/dist/firstnames.json.mjs"),
      import("@zxcvbn-ts/language-en/dist/wikipedia.json.mjs"),
      import("@zxcvbn-ts/language-en/dist/wordSequences.json.mjs"),
      import("@zxcvbn-ts/language-en/dist/translations.mjs"),
    ]);
    const zxcvbn = new ZxcvbnFactory({
      dictionary: {
        ...common.dictionary,
        "firstnames-en": firstnames.default,
        "wikipedia-en": wikipedia.default,
        ...wordSequences.default,
      },
      graphs: common.adjacencyGraphs,
      translations: translations.default,
    });
    return (password: string, userInputs: string[]) => {
      const result = zxcvbn.check(password, userInputs);
      return { score: result.score, suggestion: result.feedback.warning ?? result.feedback.suggestions[0] ?? null };
    };
  })();
  return loading;
}

/** The meter's verdict for `password`, given the other fields of the form. */
export async function measure(password: string, userInputs: string[]): Promise<Strength> {
  const estimate = await loadEstimator();
  const { score, suggestion } = estimate(password.slice(0, 128), userInputs.filter(Boolean));
  return strength(password, score, suggestion);
}
