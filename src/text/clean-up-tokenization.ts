// transformers' PreTrainedTokenizerBase.clean_up_tokenization, which decode applies when a tokenizer's
// config asks for it (clean_up_tokenization_spaces): CLIP's and BERT's tokenizers share it.
const CLEAN_UP_REPLACEMENTS: ReadonlyArray<readonly [string, string]> = [
  [' .', '.'], [' ?', '?'], [' !', '!'], [' ,', ','], [" ' ", "'"],
  [" n't", "n't"], [" 'm", "'m"], [" 's", "'s"], [" 've", "'ve"], [" 're", "'re"],
];

export function cleanUpTokenization(text: string): string {
  return CLEAN_UP_REPLACEMENTS.reduce((out, [from, to]) => out.replaceAll(from, to), text);
}
