/** Where the delivery records of edge-to-cloud objects point. */
export const CLOUD = { destinationType: 'cloud', destinationId: 'css' } as const
