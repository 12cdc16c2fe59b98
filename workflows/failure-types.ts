/**
 * Failure types the activities raise and the workflow acts on: one place for both sides (the
 * workflow bundle loads this, never activity code).
 */
export const FailureType = {
  /** The call has no events: nothing to run, ever. Final. */
  NotFound: 'ServiceCallNotFound',
  /**
   * The attempt failed before its request left the worker (the database was unreachable for the
   * stream, the due mark or the signing secrets). Not an attempt at all: the workflow waits and
   * runs the same attempt again, for as long as it takes, instead of counting it.
   */
  NotSent: 'AttemptNotSent',
  /** A callback attempt was made and recorded without a 2xx: Temporal retries it after a backoff. */
  CallbackNotDelivered: 'CallbackNotDelivered',
} as const;
