import type { Weight } from '../tensor/weight.js';
import type { MoeWeights } from '../moe/moe-layer.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import { COMMON_NAMES as N, tensorName } from './architectures.js';
import type { ModelConfig } from './config.js';
import type { TensorStore } from './weight-store.js';

export interface AttentionWeights {
  readonly q: Weight; // [heads*headDim, hidden]
  readonly k: Weight; // [kvHeads*headDim, hidden]
  readonly v: Weight; // [kvHeads*headDim, hidden]
  readonly o: Weight; // [hidden, heads*headDim]
  readonly qBias?: Weight;
  readonly kBias?: Weight;
  readonly vBias?: Weight;
  /** [hidden] when the family's attention_bias covers o_proj too (ArchSpec.outputBias) */
  readonly oBias?: Weight;
  /** [headDim] (per-head) or [heads*headDim] (full) */
  readonly qNorm?: Weight;
  readonly kNorm?: Weight;
}

export interface LayerWeights {
  readonly inputNorm: Weight;
  readonly postAttnNorm: Weight;
  readonly attn: AttentionWeights;
  readonly moe?: MoeWeights;
  readonly dense?: SwiGluWeights;
}

export interface ModelWeights {
  readonly embed: Weight; // [vocab, hidden]
  readonly layers: readonly LayerWeights[];
  readonly finalNorm: Weight; // [hidden]
  readonly lmHead: Weight; // [vocab, hidden]
}

/**
 * Resolve every tensor the architecture needs, checking shapes, before any token is run: a missing
 * or misshapen tensor is reported by name at load time, never halfway through a forward.
 */
export function resolveWeights(cfg: ModelConfig, store: TensorStore): ModelWeights {
  const H = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const names = cfg.arch.names;
  const ffn = (l: number, gate: string, up: string, down: string, width: number, e = 0): SwiGluWeights => ({
    gate: store.get(tensorName(gate, l, e), [width, H]),
    up: store.get(tensorName(up, l, e), [width, H]),
    down: store.get(tensorName(down, l, e), [H, width]),
  });

  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const t = (template: string) => tensorName(template, l);
    const bias = (template: string, dim: number) =>
      cfg.attentionBias ? store.get(`${t(template)}.bias`, [dim]) : undefined;
    const normShape = (dim: number) => (cfg.arch.qkNorm === 'per-head' ? [cfg.headDim] : [dim]);
    const attn: AttentionWeights = {
      q: store.get(`${t(N.q)}.weight`, [qDim, H]),
      k: store.get(`${t(N.k)}.weight`, [kvDim, H]),
      v: store.get(`${t(N.v)}.weight`, [kvDim, H]),
      o: store.get(`${t(N.o)}.weight`, [H, qDim]),
      qBias: bias(N.q, qDim),
      kBias: bias(N.k, kvDim),
      vBias: bias(N.v, kvDim),
      oBias: cfg.arch.outputBias ? bias(N.o, H) : undefined,
      qNorm: cfg.arch.qkNorm === 'none' ? undefined : store.get(t(N.qNorm), normShape(qDim)),
      kNorm: cfg.arch.qkNorm === 'none' ? undefined : store.get(t(N.kNorm), normShape(kvDim)),
    };
    let moe: MoeWeights | undefined;
    let dense: SwiGluWeights | undefined;
    if (cfg.sparse[l]) {
      const experts: SwiGluWeights[] = [];
      for (let e = 0; e < cfg.numExperts; e++) {
        experts.push(ffn(l, names.expertGate, names.expertUp, names.expertDown, cfg.expertFfn, e));
      }
      const hasShared = cfg.sharedExpertFfn > 0;
      moe = {
        router: store.get(t(names.router), [cfg.numExperts, H]),
        experts,
        shared: hasShared ? ffn(l, names.sharedGate, names.sharedUp, names.sharedDown, cfg.sharedExpertFfn) : undefined,
        sharedGate: hasShared ? store.get(t(names.sharedExpertGate), [1, H]) : undefined,
      };
    } else {
      dense = ffn(l, names.denseGate, names.denseUp, names.denseDown, cfg.denseFfn);
    }
    layers.push({
      inputNorm: store.get(t(N.inputNorm), [H]),
      postAttnNorm: store.get(t(N.postAttnNorm), [H]),
      attn,
      moe,
      dense,
    });
  }
  const embed = store.get(N.embed, [cfg.vocabSize, H]);
  // tied: Hugging Face ties lm_head to the embedding at load, whatever a file holds under lm_head
  const lmHead = cfg.tieEmbeddings ? embed : store.get(N.lmHead, [cfg.vocabSize, H]);
  return { embed, layers, finalNorm: store.get(N.finalNorm, [H]), lmHead };
}
