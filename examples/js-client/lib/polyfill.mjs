// js-libp2p 3.x calls Promise.withResolvers (ES2024, Node >= 22). Node 20 lacks it: this
// adds the standard behaviour when, and only when, it is missing. Imported first.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
