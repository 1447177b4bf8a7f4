/**
 * Certificates for TLS on REST and MQTT: a CA, server certificates and node client certificates.
 * The only `node-forge` import. Keys come from Node's native RSA generator (forge's pure-JS
 * generator takes seconds per key); forge builds and signs the X.509 certificates.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import net from 'node:net'
import forge from 'node-forge'
import { ValidationError } from '../common/errors.js'

export interface PemPair {
  cert: string
  key: string
}

export interface CertOptions {
  /** Validity in days (default 825, the longest browsers accept for server certificates). */
  days?: number
}

function newKeys (): {
  privateKey: forge.pki.rsa.PrivateKey
  publicKey: forge.pki.rsa.PublicKey
  keyPem: string
} {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey
  return { privateKey: priv, publicKey: forge.pki.rsa.setPublicKey(priv.n, priv.e), keyPem }
}

function baseCert (publicKey: forge.pki.rsa.PublicKey, cn: string, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  // Positive 16-byte serial: the top bit cleared so no DER parser reads it as negative.
  const serial = randomBytes(16)
  serial[0] = (serial[0] ?? 0) & 0x7f
  cert.serialNumber = serial.toString('hex')
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000)
  cert.setSubject([
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: 'edgesync' }
  ])
  return cert
}

function loadCa (ca: PemPair): { cert: forge.pki.Certificate; key: forge.pki.PrivateKey } {
  try {
    return { cert: forge.pki.certificateFromPem(ca.cert), key: forge.pki.privateKeyFromPem(ca.key) }
  } catch (err) {
    throw new ValidationError('The CA certificate or key is not valid PEM', { cause: err })
  }
}

/** A self-signed CA that signs the server and node certificates. */
export function createCa (cn: string, opts: CertOptions = {}): PemPair {
  const keys = newKeys()
  const cert = baseCert(keys.publicKey, cn, opts.days ?? 3650)
  cert.setIssuer(cert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' }
  ])
  cert.sign(keys.privateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key: keys.keyPem }
}

/** A server certificate for the CSS REST API and MQTT listeners; `hosts` are DNS names or IP addresses. */
export function createServerCert (ca: PemPair, hosts: string[], opts: CertOptions = {}): PemPair {
  if (hosts.length === 0) {
    throw new ValidationError('A server certificate needs at least one host name or IP address')
  }
  const issuer = loadCa(ca)
  const keys = newKeys()
  const cert = baseCert(keys.publicKey, hosts[0] ?? '', opts.days ?? 825)
  cert.setIssuer(issuer.cert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hosts.map((h) => (net.isIP(h) !== 0 ? { type: 7, ip: h } : { type: 2, value: h }))
    }
  ])
  cert.sign(issuer.key as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key: keys.keyPem }
}

/** A client certificate for an edge node; its common name is the node's broker identity `org/type/id`. */
export function createClientCert (ca: PemPair, identity: string, opts: CertOptions = {}): PemPair {
  const issuer = loadCa(ca)
  const keys = newKeys()
  const cert = baseCert(keys.publicKey, identity, opts.days ?? 825)
  cert.setIssuer(issuer.cert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true }
  ])
  cert.sign(issuer.key as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key: keys.keyPem }
}
