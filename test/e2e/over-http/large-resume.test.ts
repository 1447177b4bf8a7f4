/** The scenarios of ../large-resume.test.ts with every ESS on `CommunicationProtocol http`. */
process.env.SYNC_TEST_PROTOCOL = 'http'
await import('../large-resume.test.js')
