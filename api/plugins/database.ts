import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { openDatabase, type Database } from '../../core/db';
import { AppendNotifier } from '../../core/event-store';
import { withinTimeout } from './reachable';

declare module 'fastify' {
  interface FastifyInstance {
    /** The api's connection pool; closed when the app closes. */
    database: Database;
    /** Wakes the relay after an append (see AppendNotifier). */
    notifier: AppendNotifier;
    /** Whether PostgreSQL answers within the readiness timeout. */
    postgresReachable(): Promise<boolean>;
  }
}

interface DatabasePluginOptions {
  url: string;
  max: number;
  applicationName: string;
}

/** Opens the database for the app and ends the pool when the app closes. */
export const databasePlugin = fp(
  async (fastify: FastifyInstance, opts: DatabasePluginOptions) => {
    const database = openDatabase(opts.url, { max: opts.max, applicationName: opts.applicationName });
    fastify.decorate('database', database);
    fastify.decorate('notifier', new AppendNotifier(database.pool));
    fastify.decorate('postgresReachable', () => withinTimeout(database.pool.query('select 1')));
    fastify.addHook('onClose', () => database.close());
  },
  { name: 'punctual-database' },
);
