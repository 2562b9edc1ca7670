import { constants } from 'node:os';
import { onTemporariesChange, removeTemporaries, temporaryCount } from './temporaries.js';

/**
 * Interrupts and a closed stdout, for the command line.
 *
 * SIGINT/SIGTERM/SIGHUP handlers are installed only while a temporary exists: then the run removes
 * its temporaries, prints one line and exits with 128 + the signal number. At any other time the
 * default action stands, so Ctrl-C stops a long computation at once (a JavaScript handler runs only
 * when the event loop gets a turn). Writers that run long yield between chunks so the handler runs
 * soon; one that cannot (export-gguf writes synchronously) finishes its file, then the run stops.
 *
 * A closed stdout (`moesaic ... | head`) ends the run quietly, as Unix tools do: EPIPE is not an error
 * worth a stack trace. The exit hook still removes any temporaries.
 */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function installInterruptHandling(): void {
  let armed = false;
  const handler = (signal: NodeJS.Signals) => {
    const n = removeTemporaries();
    const what = n === 0 ? '' : `; removed ${n} unfinished output${n === 1 ? '' : 's'}`;
    process.stderr.write(`\nmoesaic: interrupted by ${signal}${what}\n`);
    process.exit(128 + (constants.signals[signal] ?? 2));
  };
  let disarming = false;
  onTemporariesChange((count) => {
    if (count > 0 && !armed) {
      for (const s of SIGNALS) process.on(s, handler);
      armed = true;
    } else if (count === 0 && armed && !disarming) {
      // Disarm only after the event loop has polled once more, not now: a signal that arrived during a
      // synchronous write is delivered by that poll and must still find its handler (else it would be
      // lost and the run would end as if never interrupted). Hence two nested immediates: the first
      // may run before this turn's poll, the second runs after the next one.
      disarming = true;
      setImmediate(() =>
        setImmediate(() => {
          disarming = false;
          if (temporaryCount() > 0) return;
          for (const s of SIGNALS) process.off(s, handler);
          armed = false;
        }),
      );
    }
  });
}

export function installClosedStdoutHandling(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}

/** True for an EPIPE raised synchronously by a write to a closed pipe. */
export function isClosedPipe(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'EPIPE';
}
