/** The scenarios of ../edge-to-cloud.test.ts with every ESS on `CommunicationProtocol http`. */
process.env.SYNC_TEST_PROTOCOL = 'http'
await import('../edge-to-cloud.test.js')
