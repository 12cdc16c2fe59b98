import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

export interface TemporalTarget {
  address: string;
  namespace: string;
}

/**
 * A client whose connection is made on first use, so a process that only needs Temporal
 * sometimes (the API's readiness, the relay's starter) starts and serves while Temporal is down.
 */
export function lazyTemporalClient(target: TemporalTarget): { client: Client; connection: Connection } {
  const connection = Connection.lazy({ address: target.address, connectTimeout: '5s' });
  return { connection, client: new Client({ connection, namespace: target.namespace }) };
}

const INDEXED_VALUE_TYPES = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  KeywordList: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

/**
 * Registers Punctual's search attributes on a cluster that lacks them (the embedded server gets
 * them at start). Needs operator rights; without them an operator registers them once by hand
 * (docs/operations.md), and until then starting workflows fails loudly and is retried.
 */
export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  wanted: Record<string, keyof typeof INDEXED_VALUE_TYPES>,
): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set([
    ...Object.keys(existing.customAttributes ?? {}),
    ...Object.keys(existing.systemAttributes ?? {}),
  ]);
  const missing = Object.entries(wanted).filter(([name]) => !known.has(name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED_VALUE_TYPES[type]])),
  });
  return missing.map(([name]) => name);
}
