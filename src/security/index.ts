export { hashSecret, hashGeneratedSecret, verifySecret, generateSecret } from './secrets.js'
export { Authenticator, parseBasicAuth, type Identity } from './authenticator.js'
export { mosquittoAclText, mosquittoPasswordLine } from './mosquitto.js'
export { ensureBootstrapAdmin, type BootstrapResult } from './bootstrap.js'
export { serverTls, clientTls } from './tls-files.js'
export { RateLimiter, LoginBackoff, LoginGuard } from './limits.js'
export {
  OrgSigningKeys,
  canonical,
  parsePublicKey,
  trustStatement,
  verifySignature,
  type Signature
} from './signing.js'
