/**
 * Small process / network helpers shared by the runtime launchers
 * (Temporal dev server, embedded Postgres). Kept dependency-free on purpose:
 * these run before anything else in the app is up.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { open } from 'node:fs/promises';

/** Progress lines of the runtime helpers (embedded servers, downloads); the services log with core/logger.ts. */
export type LineLog = (msg: string) => void;

/** A logger that drops everything; used when the caller passes none. */
export const silentLog: LineLog = () => undefined;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True when a process with this pid exists. EPERM means it exists but belongs
 * to another user (e.g. postgres running as the `postgres` user while we are
 * not root), so it counts as alive.
 */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until the pid is gone or the deadline passes; returns whether it is gone. */
export async function waitForPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isPidAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Tries to bind host:port ourselves. Binding (rather than only connecting)
 * also catches sockets that are bound but not yet accepting, and wildcard
 * listeners that would make the real server fail with EADDRINUSE.
 */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** True when something accepts TCP connections on host:port within timeoutMs. */
export function isPortAccepting(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Throws a clear error when host:port is already taken. `what` names the
 * service ("Temporal dev server gRPC", "embedded Postgres") so the message
 * tells the operator which port setting to change.
 */
export async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${what}: invalid port ${String(port)} (must be an integer 1-65535)`);
  }
  const bindable = await canBind(host, port);
  if (!bindable || (await isPortAccepting(host, port, 500))) {
    throw new Error(
      `${what}: port ${port} on ${host} is already in use by another process. ` +
        `Stop that process or configure a different port for ${what}.`,
    );
  }
}

/** Last `maxBytes` of a text file, or '' if it cannot be read (used to explain a crash). */
export async function readFileTail(file: string, maxBytes = 4000): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/**
 * Splits a byte stream into lines and hands each non-empty one to `onLine`.
 * Used to forward child-process output to a LineLog line by line.
 */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer | string): void; flush(): void } {
  let pending = '';
  return {
    push(chunk) {
      pending += chunk.toString();
      const parts = pending.split(/\r?\n|\r/);
      pending = parts.pop() ?? '';
      for (const part of parts) if (part.trim() !== '') onLine(part);
    },
    flush() {
      if (pending.trim() !== '') onLine(pending);
      pending = '';
    },
  };
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A TCP port free on loopback right now (the OS picks it; a race with another binder is possible). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A spawned server process, watched from spawn to exit. */
export interface SupervisedChild {
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** How it exited, once it has. */
  exitInfo: () => { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; idempotent; resolves once the process is gone. */
  stop: () => Promise<void>;
}

/**
 * Watches a just-spawned server process: waits for it to spawn (throws `could not start <name>`
 * if it cannot), kills it hard if this process exits without stopping it ('exit' handlers must
 * be synchronous), and stops it gracefully on request.
 */
export async function superviseChild(
  child: ChildProcess,
  opts: { name: string; graceMs: number; log: LineLog },
): Promise<SupervisedChild> {
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const killOnExit = (): void => {
    if (exitInfo === undefined) child.kill('SIGKILL');
  };
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      process.off('exit', killOnExit);
      resolve();
    });
  });
  process.on('exit', killOnExit);
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawnError !== undefined || child.pid === undefined) {
    process.off('exit', killOnExit);
    throw new Error(`could not start ${opts.name}: ${errorMessage(spawnError)}`);
  }
  const pid = child.pid;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo !== undefined) return;
      child.kill('SIGTERM');
      const graceful = await Promise.race([exited.then(() => true), sleep(opts.graceMs).then(() => false)]);
      if (!graceful) {
        opts.log(`${opts.name}: pid ${pid} ignored SIGTERM for ${opts.graceMs / 1000} s, sending SIGKILL`);
        child.kill('SIGKILL');
        await exited;
      }
      opts.log(`${opts.name}: pid ${pid} stopped`);
    })();
    return stopping;
  };
  return { pid, exited, exitInfo: () => exitInfo, stop };
}
