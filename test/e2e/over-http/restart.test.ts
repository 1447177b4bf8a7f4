/** The scenarios of ../restart.test.ts with every ESS on `CommunicationProtocol http`. */
process.env.SYNC_TEST_PROTOCOL = 'http'
await import('../restart.test.js')
