/**
 * The model layer's public face, for src/commands (`diffuse models ...`, `--model`) and the
 * pipeline's loader. Nothing here knows about the CLI or the pipeline.
 */
export { listModels, pruneDerivedGraphs, removeModel, verifyModel, type CachedModel, type LocalListing, type VerifyReport, type VerifyOptions, type RemoveOptions } from './cache.js';
export { cacheRoot, convertedFolder, modelPaths } from './cache-layout.js';
export * from './errors.js';
export { hubOptionsFromEnv, DEFAULT_ENDPOINT, type HubOptions } from './hub.js';
export { addLocalModel, readLocalModels, type LocalModel } from './local.js';
export type { PullEvent, VerifyProgress, ProgressListener } from './progress.js';
export { pullModel, pullRepo, type PullOptions, type PullResult } from './pull.js';
export { formatModelRef, parseModelRef, type ModelRef } from './ref.js';
export { approxDownloadBytes, componentsFor, fileSetUse, findControlNet, findEntry, findInterrogator, findLora, findPreprocessor, findUpscaler, findVae, loadRegistry, registryIds, validateRegistry, TASKS, type ControlNetEntry, type FileSetEntry, type InterrogatorEntry, type InterrogatorPart, type LoraEntry, type PreprocessorEntry, type Recommended, type Registry, type RegistryEntry, type Task, type UpscalerEntry, type VaeEntry } from './registry.js';
export { pullCommand, resolveModel, type ResolveOptions, type ResolvedModel } from './resolve.js';
export type { CacheOptions, FileChoice } from './target.js';
