import { Client, Connection } from '@temporalio/client';

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
