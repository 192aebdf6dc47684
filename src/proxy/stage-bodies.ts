/**
 * Request bodies for the two stages.
 * - Stage 1 (prefill, producer): the client's body with max_tokens=1 (and max_completion_tokens=1 when the
 *   client sent it), stream=false, no stream_options, no min_tokens/min_completion_tokens; for connectors that
 *   hand KV over by parameters (NixlConnector, MooncakeConnector) also a kv_transfer_params request.
 * - Stage 2 (decode, consumer): the client's bytes exactly as sent, unless the kv_transfer_params returned by
 *   stage 1 must be added.
 */
export type Route = 'completions' | 'chat';

export class BadRequestBody extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export type ClientBody = Record<string, unknown>;

/** Parse and validate a client's JSON body; throws BadRequestBody with a message naming the problem. */
export function parseClientBody(raw: Buffer, route: Route): ClientBody {
  if (raw.length === 0) throw new BadRequestBody('Request body is empty: send a JSON object.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new BadRequestBody(`Request body is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new BadRequestBody(
      `Request body must be a JSON object, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed}.`,
    );
  const body = parsed as ClientBody;
  if (route === 'completions') {
    if (body.prompt === undefined || body.prompt === null)
      throw new BadRequestBody('Field "prompt" is required for /v1/completions.', 'prompt');
  } else if (!Array.isArray(body.messages)) {
    throw new BadRequestBody(
      body.messages === undefined
        ? 'Field "messages" is required for /v1/chat/completions.'
        : 'Field "messages" must be an array of chat messages.',
      'messages',
    );
  }
  return body;
}

/**
 * Connectors that pair the two engines through the request id (P2pNcclConnector): the producer pushes the KV to
 * the consumer the id names, and the consumer waits for it.
 */
export function usesP2pRequestIds(connector: string | null): boolean {
  return connector !== null && /p2pnccl/i.test(connector);
}

/**
 * The request id P2P NCCL engines parse the peer's address from, as vLLM's proxy example builds it
 * (examples/online_serving/disaggregated_serving_p2p_nccl_xpyd/disagg_proxy_p2p_nccl_xpyd.py), sent in the
 * X-Request-Id header of both stages (vLLM takes its request id from that header). p2p_nccl_connector.py finds
 * the producer's `<ip>:<port>` after `___prefill_addr_` and the consumer's after `___decode_addr_`; each
 * address is the engine's P2pNcclEngine zmq_address (`<ip>:<kv_port>`).
 */
export function p2pRequestId(prefillKvAddress: string, decodeKvAddress: string, uuidHex: string): string {
  return `___prefill_addr_${prefillKvAddress}___decode_addr_${decodeKvAddress}_${uuidHex}`;
}

/** Connectors whose decode side needs the prefill side's kv_transfer_params (vLLM's P/D handshake). */
export function usesKvTransferParams(connector: string | null): boolean {
  return connector !== null && /nixl|mooncake/i.test(connector);
}

/** What a Nixl-style producer is asked for: remote decode, the decode side fills in the rest. */
export const PREFILL_KV_TRANSFER_REQUEST = Object.freeze({
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
});

/** Client fields stage 1 replaces or leaves out. */
const PREFILL_DROP = new Set(['max_tokens', 'max_completion_tokens', 'stream', 'stream_options', 'min_tokens', 'min_completion_tokens']);

export function prefillBody(client: ClientBody, connector: string | null, kvParams = usesKvTransferParams(connector)): string {
  // Copy without the dropped fields rather than spread-then-delete: deleting keys turns the object into a
  // slow dictionary that JSON.stringify serialises at about half the speed.
  const b: ClientBody = {};
  for (const k in client) {
    if (PREFILL_DROP.has(k)) continue;
    // A "__proto__" field from JSON.parse is an own property; plain assignment would hit the prototype setter.
    if (k === '__proto__') Object.defineProperty(b, k, { value: client[k], enumerable: true, writable: true, configurable: true });
    else b[k] = client[k];
  }
  b.max_tokens = 1;
  if ('max_completion_tokens' in client) b.max_completion_tokens = 1;
  b.stream = false;
  if (kvParams) b.kv_transfer_params = { ...PREFILL_KV_TRANSFER_REQUEST };
  return JSON.stringify(b);
}

/**
 * Stage 2 body. Without params to add, the client's own bytes go through untouched. With params, the client's
 * object is re-serialised with `kv_transfer_params` set to what stage 1 returned.
 */
export function decodeBody(raw: Buffer, client: ClientBody | null, kvTransferParams: unknown): Buffer | string {
  if (kvTransferParams === undefined || client === null) return raw;
  return JSON.stringify({ ...client, kv_transfer_params: kvTransferParams });
}

/**
 * The kv_transfer_params in a producer's (non-streaming) response, or undefined when it returned none.
 * vLLM puts them at the top level of the completion / chat completion response.
 */
export function extractKvTransferParams(responseText: string): unknown {
  try {
    const r = JSON.parse(responseText) as Record<string, unknown> | null;
    if (r === null || typeof r !== 'object') return undefined;
    const p = r.kv_transfer_params;
    return p === null || p === undefined ? undefined : p;
  } catch {
    return undefined;
  }
}
