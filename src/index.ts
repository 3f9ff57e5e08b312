// The package's public surface for other programs: receivers verify alert webhooks with
// verifyWebhook; the engine itself starts from src/main.ts.
export { verifyWebhook, WebhookVerificationError, sign, signedHeaders } from './alerts/signing.js';
export type { VerifyOptions, WebhookHeaders } from './alerts/signing.js';
export type { IncidentView, IncidentKind } from './alerts/incidents.js';
