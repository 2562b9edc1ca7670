/**
 * moesaic as a library. See README.md ("Library API") for examples.
 */
export { loadModel, Model } from './model/model.js';
export type { LoadOptions, GenerateOptions, GeneratedToken } from './model/model.js';
export type { ModelConfig } from './model/config.js';
export type { SamplingOptions } from './model/sampling.js';
export type { Routing, Router } from './moe/routing.js';
export type { DispatchPlan, DispatchPolicy } from './moe/dispatch.js';
export type { Backend } from './tensor/backend.js';
export type { Weight } from './tensor/weight.js';
export { MoesaicError } from './errors.js';
export type { ErrorCode } from './errors.js';
