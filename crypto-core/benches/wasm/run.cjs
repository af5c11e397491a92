// Times the wasm build of benches/wasm/main.rs under Node (see main.rs). Usage:
//   node run.cjs path/to/ratchet_bench.js
// Prints: wasm 1KiB encrypt+decrypt ns_per_op min=… median=…
'use strict';
const { performance } = require('node:perf_hooks');
const { RatchetBench } = require(require('node:path').resolve(process.argv[2]));

const iterations = RatchetBench.iterations();
const rounds = RatchetBench.rounds();
const bench = new RatchetBench();
bench.run(Math.floor(iterations / 4)); // warm-up (JIT tiers, allocator)
const perOp = [];
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  bench.run(iterations);
  perOp.push(((performance.now() - t0) * 1e6) / iterations);
}
perOp.sort((a, b) => a - b);
console.log(
  `wasm 1KiB encrypt+decrypt ns_per_op min=${perOp[0].toFixed(1)} ` +
    `median=${perOp[Math.floor(perOp.length / 2)].toFixed(1)}`,
);
bench.free();
