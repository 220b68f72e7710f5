// What the test page gets of mediasoup-client (bundled by esbuild when the test runs).
import { Device } from 'mediasoup-client';
window.MSC = { Device };
