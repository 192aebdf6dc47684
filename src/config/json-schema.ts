/** JSON Schema for editors, generated from the zod schema (input side: fields with defaults are optional). */
import * as z from 'zod';
import { configSchema } from './schema.js';

export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    title: 'pd configuration',
    description: 'Configuration of a vLLM prefill/decode disaggregated stack managed by pd.',
  };
}

export function configJsonSchemaText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n';
}
