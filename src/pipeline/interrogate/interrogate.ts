import type { Raster } from '../../image/raster.js';
import type { SessionSettings } from '../../onnx/session.js';
import { BlipCaptioner } from './blip-captioner.js';
import { CLIP_CONTEXT, ClipEncoder } from './clip-encoder.js';
import { cachedFeatures } from './feature-cache.js';
import { cosineRank, rankWeight, softmaxRank, truncateToFit } from './rank.js';
import { readTermLists, shippedTermLists, type TermList } from './term-lists.js';

export const INTERROGATE_MODES = ['classic', 'fast'] as const;
export type InterrogateMode = (typeof INTERROGATE_MODES)[number];
/** clip-interrogator's interrogate_fast default: the 32 best terms of all lists. */
export const FAST_TERMS = 32;

export interface InterrogatorFolders {
  blip: string;
  clip: string;
  /** A folder of *.txt lists; none: the shipped clip-interrogator lists. */
  terms?: string;
  /** Where text features are kept between runs; none: computed every run. */
  featureCache?: string;
}

export interface InterrogateRequest {
  image: Raster;
  mode: InterrogateMode;
  /** BLIP's min_length and max_length (A1111: 24 and 48), counting the prompt's tokens. */
  minLength: number;
  maxLength: number;
  /** Write classic terms as (term:probability), A1111's "include ranks" setting. */
  ranks: boolean;
}

export interface InterrogatedTerm {
  category: string;
  term: string;
  /** classic: the softmax probability within its list; fast: the cosine. */
  score: number;
}

export interface InterrogateResult {
  caption: string;
  captionIds: number[];
  terms: InterrogatedTerm[];
  prompt: string;
}

/**
 * img2txt: a BLIP caption plus CLIP-ranked terms.
 * - classic: A1111's "Interrogate CLIP" (modules/interrogate.py): the caption, then each list's top-n terms by
 *   softmax rank, lists in name order.
 * - fast: clip-interrogator's interrogate_fast: the caption, then the 32 terms of all lists with the highest
 *   cosine, the whole cut to CLIP's 77 tokens.
 * Term lists are read before any model loads, so a bad folder costs nothing.
 */
export class Interrogator {
  private constructor(
    private readonly blip: BlipCaptioner,
    private readonly clip: ClipEncoder,
    readonly lists: readonly TermList[],
    private readonly featureCache: string | undefined,
  ) {}

  static async open(folders: InterrogatorFolders, settings: SessionSettings): Promise<Interrogator> {
    const lists = folders.terms === undefined ? shippedTermLists() : readTermLists(folders.terms);
    const clip = await ClipEncoder.open(folders.clip, settings);
    try {
      return new Interrogator(await BlipCaptioner.open(folders.blip, settings), clip, lists, folders.featureCache);
    } catch (err) {
      await clip.release();
      throw err;
    }
  }

  async run(request: InterrogateRequest): Promise<InterrogateResult> {
    const caption = await this.blip.caption(request.image, request);
    const image = await this.clip.imageFeatures(request.image);
    const features: Float32Array[][] = [];
    for (const list of this.lists) {
      const key = { model: this.clip.textModelIdentity, listSha256: list.sha256, count: list.items.length };
      features.push(await cachedFeatures(this.featureCache, key, () => this.clip.textFeatures(list.items)));
    }
    if (request.mode === 'fast') {
      const merged = this.lists.flatMap((list, l) => list.items.map((term, i) => ({ category: list.name, term, feature: features[l]![i]! })));
      const terms = cosineRank(image, merged.map((m) => m.feature), FAST_TERMS).map((r) => ({ category: merged[r.index]!.category, term: merged[r.index]!.term, score: r.score }));
      const prompt = truncateToFit([caption.text, ...terms.map((t) => t.term)].join(', '), (t) => this.clip.tokenCount(t), CLIP_CONTEXT);
      return { caption: caption.text, captionIds: caption.ids, terms, prompt };
    }
    const terms = this.lists.flatMap((list, l) =>
      softmaxRank(image, features[l]!, list.topn).map((r) => ({ category: list.name, term: list.items[r.index]!, score: r.score })),
    );
    const prompt = caption.text + terms.map((t) => (request.ranks ? `, (${t.term}:${rankWeight(t.score)})` : `, ${t.term}`)).join('');
    return { caption: caption.text, captionIds: caption.ids, terms, prompt };
  }

  async release(): Promise<void> {
    await Promise.all([this.blip.release(), this.clip.release()]);
  }
}
