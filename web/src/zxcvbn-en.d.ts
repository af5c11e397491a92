// The single lists of @zxcvbn-ts/language-en (the package declares only its index).
declare module "@zxcvbn-ts/language-en/dist/firstnames.json.mjs" {
  const list: string[];
  export default list;
}
declare module "@zxcvbn-ts/language-en/dist/wikipedia.json.mjs" {
  const list: string[];
  export default list;
}
declare module "@zxcvbn-ts/language-en/dist/wordSequences.json.mjs" {
  const lists: Record<string, string[]>;
  export default lists;
}
declare module "@zxcvbn-ts/language-en/dist/translations.mjs" {
  import type { TranslationKeys } from "@zxcvbn-ts/core";
  const translations: TranslationKeys;
  export default translations;
}
