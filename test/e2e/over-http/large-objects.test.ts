/** The scenarios of ../large-objects.test.ts with every ESS on `CommunicationProtocol http`. */
process.env.SYNC_TEST_PROTOCOL = 'http'
await import('../large-objects.test.js')
