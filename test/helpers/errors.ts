import { expect } from 'vitest';
import { ConfigError } from '../../src/errors';

/** The error of class `ErrorClass` that `fn` throws; fails the test if it throws something else or nothing. */
export function thrownBy<E extends Error>(fn: () => unknown, ErrorClass: abstract new (...args: never[]) => E): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ErrorClass);
    return err as E;
  }
  throw new Error(`expected a ${ErrorClass.name}`);
}

/** The ConfigError `fn` throws; fails the test if it throws something else or nothing. */
export function configErrorOf(fn: () => unknown): ConfigError {
  return thrownBy(fn, ConfigError);
}
