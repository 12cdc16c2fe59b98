import type { Punctual, SigningSecret } from '@punctual/client';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { localTime } from './format';
import { Alert, Notice } from './status';
import { describeError, isStatus } from './session';

interface Props {
  client: Punctual;
  onUnauthorized: () => void;
}

export function SecretsPage({ client, onUnauthorized }: Props) {
  const [secrets, setSecrets] = useState<SigningSecret[] | null>(null);
  const [grace, setGrace] = useState('86400');
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const fail = useCallback(
    (err: unknown) => {
      if (isStatus(err, 401)) onUnauthorized();
      else setError(describeError(err));
    },
    [onUnauthorized],
  );
  useEffect(() => {
    client.secrets.list().then(setSecrets, fail);
  }, [client, fail]);
  const rotate = async (event: Event) => {
    event.preventDefault();
    const graceSeconds = Number(grace);
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 604_800) {
      return setError('Grace period: a whole number of seconds from 0 to 604800');
    }
    try {
      setSecrets(await client.secrets.rotate({ graceSeconds }));
      setError(null);
      setNotice('Rotated: a new secret signs from now on.');
    } catch (err) {
      fail(err);
    }
  };
  return (
    <section aria-labelledby="secrets-title">
      <h1 id="secrets-title">Signing secrets</h1>
      <p>
        Every request Punctual sends, and every callback, is signed with each of these secrets (Standard Webhooks).
        Verify with any of them.
      </p>
      <Alert text={error} />
      <Notice text={notice} />
      {secrets !== null && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Signing secrets, oldest first</caption>
            <thead>
              <tr>
                <th scope="col">Secret</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
              </tr>
            </thead>
            <tbody>
              {secrets.map((s) => (
                <tr key={s.id}>
                  <td class="mono secret">{s.secret}</td>
                  <td>{localTime(s.createdAt)}</td>
                  <td>{s.expiresAt === null ? 'never' : localTime(s.expiresAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form class="rotate" onSubmit={(e) => void rotate(e)}>
        <label for="grace">Keep the current secrets signing for (seconds)</label>
        <input id="grace" inputMode="numeric" value={grace} onInput={(e) => setGrace(e.currentTarget.value)} />
        <button type="submit">Rotate secret</button>
      </form>
    </section>
  );
}
