// @ts-check

/**
 * Items for one `for await` loop: pushed by a producer, pulled by the loop; `end` finishes
 * the loop after what is queued, or rejects its next pull with an error.
 * @template T
 */
export class EventQueue {
  /** @type {T[]} */
  #items;
  /** @type {((r: IteratorResult<T, undefined>) => void) | null} */
  #wake = null;
  /** @type {((e: unknown) => void) | null} */
  #fail = null;
  #closed = false;
  /** @type {unknown} */
  #error = null;

  /** @param {T[]} [backlog] items pushed before the loop started */
  constructor(backlog = []) {
    this.#items = backlog;
  }

  /** @param {T} item */
  push(item) {
    if (this.#closed) return;
    const wake = this.#wake;
    if (wake) {
      this.#wake = this.#fail = null;
      wake({ value: item, done: false });
    } else this.#items.push(item);
  }

  /** @param {unknown} [error] */
  end(error) {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error ?? null;
    const wake = this.#wake;
    const fail = this.#fail;
    this.#wake = this.#fail = null;
    if (wake && fail) this.next().then(wake, fail);
  }

  /** @returns {Promise<IteratorResult<T, undefined>>} */
  next() {
    if (this.#items.length) return Promise.resolve({ value: /** @type {T} */ (this.#items.shift()), done: false });
    if (this.#closed && this.#error) {
      const error = this.#error;
      this.#error = null;
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#wake = resolve;
      this.#fail = reject;
    });
  }
}
