/** The README's config reference, generated from the same JSON Schema (so it cannot drift from the zod schema). */
import { configJsonSchema } from './json-schema.js';

interface JsonSchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  enum?: unknown[];
  anyOf?: JsonSchemaNode[];
  additionalProperties?: JsonSchemaNode | boolean;
  minimum?: number;
  maximum?: number;
}

function typeOf(node: JsonSchemaNode): string {
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (node.anyOf) return node.anyOf.map(typeOf).join(' \\| ');
  if (node.type === 'array') return `${node.items ? typeOf(node.items) : 'any'}[]`;
  if (node.type === 'object' && node.additionalProperties && typeof node.additionalProperties === 'object') {
    return `map of ${typeOf(node.additionalProperties)}`;
  }
  return Array.isArray(node.type) ? node.type.join(' \\| ') : (node.type ?? 'any');
}

function rows(node: JsonSchemaNode, prefix: string, out: string[][]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (key === '$schema') continue;
    const path = prefix ? `${prefix}.${key}` : key;
    if (child.type === 'object' && child.properties) {
      rows(child, path, out);
      continue;
    }
    if (child.type === 'array' && child.items?.type === 'object' && child.items.properties) {
      out.push([`\`${path}\``, 'object[]', child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``, child.description ?? '']);
      rows(child.items, `${path}[]`, out);
      continue;
    }
    const def = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    out.push([`\`${path}\``, typeOf(child), def, (child.description ?? '').replace(/\|/g, '\\|')]);
  }
}

export function configReferenceMarkdown(): string {
  const out: string[][] = [];
  rows(configJsonSchema(), '', out);
  const lines = ['| field | type | default | meaning |', '| --- | --- | --- | --- |', ...out.map((r) => `| ${r.join(' | ')} |`)];
  return lines.join('\n') + '\n';
}
