// runLoad in a thread of its own (see runLoadInWorker): the options arrive as workerData, the result goes back as
// the one message.
import { parentPort, workerData } from 'node:worker_threads';
import { runLoad, type IsolatedLoadOptions } from './load.js';

const { bodies, ...opts } = workerData as IsolatedLoadOptions;
parentPort!.postMessage(await runLoad({ ...opts, ...(bodies ? { body: (i: number) => bodies[i]! } : {}) }));
