/**
 * Model loading: GGUF (versions 1-3) and Hugging Face safetensors folders, read lazily through
 * positioned reads, with canonical weight names and fairkv's fixture-model generator.
 *
 * @packageDocumentation
 */
export { type ByteSource, formatError, memoryByteSource, openFileByteSource } from './byte-source.js';
export {
  createFixtureModel,
  FIXTURE_MODEL_DEFAULTS,
  type FixtureModelFiles,
  type FixtureModelOptions,
  fixtureDescription,
  permuteRowsForAdjacentRope,
} from './fixture-model.js';
export {
  bfloat16BitsToNumber,
  decodeBfloat16Array,
  decodeFloat16Array,
  float16BitsToNumber,
  numberToBfloat16Bits,
  numberToFloat16Bits,
} from './float16.js';
export { quantizeGgml, type WritableGgmlType } from './ggml-quantize.js';
export {
  dequantizeGgml,
  type GgmlTypeInfo,
  ggmlByteLength,
  ggmlTypeById,
  ggmlTypeByName,
  READABLE_GGML_TYPES,
} from './ggml-types.js';
export { GgufFile, ggufStoredTensor } from './gguf-file.js';
export { GgufMetadata, shortestFloat32Decimal } from './gguf-metadata.js';
export {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_ARRAY_NESTING,
  GGUF_MAX_DIMENSIONS,
  type GgufHeader,
  type GgufMetadataEntry,
  type GgufTensorInfo,
  type GgufVersion,
  parseGgufHeader,
} from './gguf-reader.js';
export {
  GGUF_VALUE_TYPES,
  type GgufArrayValue,
  type GgufNumberType,
  type GgufValue,
  type GgufValueType,
  ggufValueToPlain,
} from './gguf-value.js';
export { encodeGguf, type GgufTensorInput, type GgufWriteInput, writeGgufFile } from './gguf-writer.js';
export { type KvHeadRanges, type KvHeadWeights, kvHeadRanges, readKvHeadWeights } from './kv-head-slice.js';
export { LLAMA_GGUF_ARCHITECTURES, llamaConfigFromGguf } from './llama-gguf-config.js';
export { LLAMA3_SCALING_CANDIDATES, llama3RopeFactors, recoverLlama3Scaling } from './llama3-rope-factors.js';
export { loadGgufModel, loadGgufModelFromFile, sameStoredBytes } from './load-gguf-model.js';
export { HF_FILES, loadHuggingFaceModel, readSafetensorsIndex } from './load-huggingface-model.js';
export { loadModel } from './load-model.js';
export { type LoadedModel, type LoadModelOptions, type ModelFormat, RANDOM_WEIGHTS_KEY } from './loaded-model.js';
export { createModelWeights, halfStoredType, type ModelWeights, type WeightInfo } from './model-weights.js';
export { matrixStoredTypes, nativeDtype } from './native-dtype.js';
export {
  decodeSafetensorsData,
  parseSafetensorsHeader,
  READABLE_SAFETENSORS_DTYPES,
  SAFETENSORS_DTYPE_BYTES,
  SAFETENSORS_MAX_HEADER_BYTES,
  SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  safetensorsStoredTensor,
} from './safetensors-reader.js';
export {
  encodeSafetensors,
  type SafetensorsTensorInput,
  type WritableSafetensorsDtype,
  writeSafetensorsFile,
} from './safetensors-writer.js';
export { SeededRandom } from './seeded-random.js';
export { elementCountOf, parseOpenedFile, type StoredTensor, StoredTensorFile } from './stored-tensor.js';
export {
  canonicalWeightNames,
  expectedWeightShape,
  ggufTensorName,
  huggingFaceTensorName,
  iterateCanonicalWeightNames,
  LAYER_WEIGHT_KINDS,
  type LayerWeightKind,
  layerWeightName,
  MODEL_WEIGHT_NAMES,
} from './weight-names.js';
