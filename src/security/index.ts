export { hashSecret, hashGeneratedSecret, verifySecret, generateSecret } from './secrets.js'
export { Authenticator, parseBasicAuth, type Identity } from './authenticator.js'
export { mosquittoAclText, mosquittoPasswordLine } from './mosquitto.js'
export { ensureBootstrapAdmin, type BootstrapResult } from './bootstrap.js'
