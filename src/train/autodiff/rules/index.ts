import { CONV_RULES } from './conv.js';
import { ELEMENTWISE_RULES } from './elementwise.js';
import { LAYOUT_RULES } from './layout.js';
import { LINEAR_RULES } from './linear.js';
import { NORMALIZATION_RULES } from './normalization.js';
import { REDUCE_RULES } from './reduce.js';
import { RESIZE_RULES } from './resize.js';
import type { GradientRule } from './rule.js';

/** Every ai.onnx op with a vector-Jacobian rule, by op type. */
export const GRADIENT_RULES: ReadonlyMap<string, GradientRule> = new Map(
  Object.entries({ ...ELEMENTWISE_RULES, ...LINEAR_RULES, ...CONV_RULES, ...NORMALIZATION_RULES, ...REDUCE_RULES, ...LAYOUT_RULES, ...RESIZE_RULES }),
);
