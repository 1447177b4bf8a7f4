/** The scenarios of ../css-ess-sync.test.ts with every ESS on `CommunicationProtocol http`. */
process.env.SYNC_TEST_PROTOCOL = 'http'
await import('../css-ess-sync.test.js')
