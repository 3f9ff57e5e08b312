// `npm run services:up | services:down | services:status`
import { config } from '../../src/shared/config.js';
import { servicesDown, servicesStatus, servicesUp } from './services.js';

// Development tooling: it reads only addresses, never the secrets, so the development
// defaults are fine here whatever NODE_ENV says.
process.env.NODE_ENV ??= 'development';

const command = process.argv[2];
const started = Date.now();
try {
  if (command === 'up') {
    await servicesUp(config());
    console.log(`services up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } else if (command === 'down') {
    await servicesDown();
  } else if (command === 'status') {
    process.exitCode = (await servicesStatus(config())) ? 0 : 1;
  } else {
    console.error('usage: services-cli up|down|status');
    process.exitCode = 2;
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
