import t from 'tap'
import { isAddressedTo } from '../../../src/css/addressing.js'
import { nodeView } from '../../../src/css/routes.js'

const node = { orgId: 'o', destinationType: 'edge', destinationId: 'n1', properties: { site: 'A' }, protocol: 'mqtt' as const, online: true, registeredAt: '2030-01-01T00:00:00.000Z', lastHeartbeat: '2030-01-01T00:00:00.000Z' }
const at = Date.parse('2030-01-01T00:00:00.000Z')

t.test('node-view - online only while connected and heard from recently', async (t) => {
  t.equal(nodeView(node, 90_000, at + 89_000).online, true)
  t.equal(nodeView(node, 90_000, at + 91_000).online, false, 'silent too long')
  t.equal(nodeView({ ...node, online: false }, 90_000, at).online, false, 'disconnected')
  t.match(nodeView(node, 90_000, at), { destinationOrgID: 'o', destinationType: 'edge', destinationID: 'n1', communication: 'mqtt', lastPingTime: node.lastHeartbeat })
})

t.test('addressing - one, list, type, org, selector', async (t) => {
  const base = { objectID: 'x', objectType: 't', destinationOrgID: 'o', instanceID: 1, dataID: 0, objectSize: 0 }
  t.equal(isAddressedTo({ ...base, destinationType: 'edge', destinationID: 'n1' }, 'o', node), true)
  t.equal(isAddressedTo({ ...base, destinationType: 'edge', destinationID: 'n2' }, 'o', node), false)
  t.equal(isAddressedTo({ ...base, destinationsList: ['edge:n2', 'edge:n1'] }, 'o', node), true)
  t.equal(isAddressedTo({ ...base, destinationsList: ['meter:n1'] }, 'o', node), false)
  t.equal(isAddressedTo({ ...base, destinationType: 'meter' }, 'o', node), false)
  t.equal(isAddressedTo(base, 'o', node), true, 'no addressing = the whole org')
  t.equal(isAddressedTo(base, 'other', node), false, 'never another org')
  t.equal(isAddressedTo({ ...base, destinationSelector: { site: 'A' } }, 'o', node), true)
  t.equal(isAddressedTo({ ...base, destinationSelector: { site: 'B' } }, 'o', node), false)
})
