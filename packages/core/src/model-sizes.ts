import { bytesPerElement, type DType } from './dtype.js';
import { type ModelConfig, queryGroupSize } from './model-config.js';

/** Byte sizes derived from a {@link ModelConfig} for one dtype; the cost model is built on them. */
export interface ModelSizes {
  dtype: DType;
  /** K and V of one token for one kv head in one layer: `2 * headDim * bytes`. */
  kvBytesPerTokenPerKvHead: number;
  /** K and V of one token across every kv head of every layer. */
  kvBytesPerToken: number;
  /**
   * Weight bytes of one kv head's slice of one layer: the Wq rows of its query group
   * (`group * headDim x hidden`), its Wk and Wv rows (`headDim x hidden` each) and the matching Wo
   * columns (`hidden x group * headDim`). About 38 MB for Llama-3.3-70B in bf16.
   */
  kvHeadSliceWeightBytes: number;
  /** Attention weights of one layer (every kv head's slice). */
  attentionWeightBytesPerLayer: number;
  /** SwiGLU MLP of one layer: gate, up and down projections, `3 * hidden * ffn * bytes`. */
  mlpWeightBytesPerLayer: number;
  /** The two RMSNorm weight vectors of one layer. */
  normWeightBytesPerLayer: number;
  /** Token embedding matrix, `vocab * hidden * bytes`. */
  embeddingBytes: number;
  /** LM head matrix held in memory (0 when tied to the embedding). */
  lmHeadBytes: number;
  /** LM head bytes read per decode step (the embedding when tied). */
  lmHeadReadBytes: number;
  /** Final RMSNorm. */
  finalNormBytes: number;
  /** Every weight of the model held once. */
  totalWeightBytes: number;
}

/** Computes the {@link ModelSizes} of `config` stored in `dtype`. */
export function modelSizes(config: ModelConfig, dtype: DType): ModelSizes {
  const bytes = bytesPerElement(dtype);
  const group = queryGroupSize(config);
  const { headDim, hiddenSize, kvHeadCount, layerCount } = config;
  const kvBytesPerTokenPerKvHead = 2 * headDim * bytes;
  const kvHeadSliceWeightBytes = (2 * group + 2) * headDim * hiddenSize * bytes;
  const attentionWeightBytesPerLayer = kvHeadSliceWeightBytes * kvHeadCount;
  const mlpWeightBytesPerLayer = 3 * hiddenSize * config.ffnSize * bytes;
  const normWeightBytesPerLayer = 2 * hiddenSize * bytes;
  const embeddingBytes = config.vocabSize * hiddenSize * bytes;
  const lmHeadBytes = config.tieWordEmbeddings ? 0 : embeddingBytes;
  const finalNormBytes = hiddenSize * bytes;
  const totalWeightBytes =
    layerCount * (attentionWeightBytesPerLayer + mlpWeightBytesPerLayer + normWeightBytesPerLayer) +
    embeddingBytes +
    lmHeadBytes +
    finalNormBytes;
  return {
    dtype,
    kvBytesPerTokenPerKvHead,
    kvBytesPerToken: kvBytesPerTokenPerKvHead * kvHeadCount * layerCount,
    kvHeadSliceWeightBytes,
    attentionWeightBytesPerLayer,
    mlpWeightBytesPerLayer,
    normWeightBytesPerLayer,
    embeddingBytes,
    lmHeadBytes,
    lmHeadReadBytes: embeddingBytes,
    finalNormBytes,
    totalWeightBytes,
  };
}
