// @ts-check

/** @typedef {() => void} Unsubscribe */

/**
 * A tiny event emitter; a listener that throws is reported, never breaks the client.
 * @template {Record<string, any>} [Events=Record<string, any>] what each event type carries
 */
export class Emitter {
  /** @type {Map<string, Set<Function>>} */
  #listeners = new Map();

  /** @template {keyof Events & string} K @param {K} type @param {(value: Events[K]) => void} fn @returns {Unsubscribe} */
  on(type, fn) {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => { set.delete(fn); };
  }

  /** @param {string} type @param {(value: any) => void} fn */
  off(type, fn) {
    this.#listeners.get(type)?.delete(fn);
  }

  /** @template {keyof Events & string} K @param {K} type @param {(value: Events[K]) => void} fn @returns {Unsubscribe} */
  once(type, fn) {
    const off = this.on(type, (value) => {
      off();
      fn(value);
    });
    return off;
  }

  /** @template {keyof Events & string} K @param {K} type @param {Events[K]} [value] */
  emit(type, value) {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) {
      try {
        fn(value);
      } catch (err) {
        report(err);
      }
    }
  }
}

/** Report an error nobody awaits, the way the platform reports uncaught ones. @param {unknown} err */
export function report(err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}
