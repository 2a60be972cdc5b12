import { probeProvider } from './probe.js';
import type { Device } from './session.js';

// One provider probe in its own process (see probeProviderIsolated): prints its status as JSON.
const status = await probeProvider(process.argv[2] as Exclude<Device, 'auto'>);
process.stdout.write(JSON.stringify(status));
