import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_LOCATION_EXTERNAL, GRAPH_INITIALIZER, TENSOR } from '../../src/onnx/initializers.js';
import { Message, ModelProto, messageField, stringField } from '../../src/onnx/proto.js';

/** A graph with every initialiser above 1 KB moved to model.onnx_data, as large exports are written. */
export function writeExternalDataVariant(source: string, dir: string): string {
  const model = ModelProto.decode(new Uint8Array(readFileSync(source)));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const init of model.graph.msg.messages(GRAPH_INITIALIZER)) {
    const raw = init.first(TENSOR.rawData)?.data;
    if (!raw || raw.length <= 1024) continue;
    const entry = (key: string, value: string) => messageField(TENSOR.externalData, new Message([stringField(1, key), stringField(2, value)]));
    init.set(TENSOR.rawData, []);
    init.set(TENSOR.externalData, [entry('location', 'model.onnx_data'), entry('offset', String(offset)), entry('length', String(raw.length))]);
    init.setInt(TENSOR.dataLocation, DATA_LOCATION_EXTERNAL);
    chunks.push(raw);
    offset += raw.length;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx_data'), Buffer.concat(chunks));
  const path = join(dir, 'model.onnx');
  writeFileSync(path, model.encode());
  return path;
}
