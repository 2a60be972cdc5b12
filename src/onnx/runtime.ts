import * as ort from 'onnxruntime-node';

// ONNX Runtime's native logger writes its own lines to stderr (e.g. for a provider library it
// cannot load); diffuse reports every failure itself, in one line. Every session is created
// through this module, so the setting is in place before the first one.
ort.env.logLevel = 'fatal';

export { ort };
