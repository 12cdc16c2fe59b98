import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Punctual, type PunctualOptions } from '@punctual/client';
import { PROJECT_ROOT, type Tenant, type TestEnv } from '../support/env';

/** The client's tests talk to the test environment's API over real HTTP, as a tenant would. */

export const CLIENT_ROOT = path.join(PROJECT_ROOT, 'clients/typescript');

export function apiUrl(env: TestEnv): string {
  const { port } = env.api.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

export function clientFor(env: TestEnv, tenant: Tenant = env.tenants.a, options: Partial<PunctualOptions> = {}) {
  return new Punctual({ baseUrl: apiUrl(env), apiKey: tenant.key, ...options });
}
