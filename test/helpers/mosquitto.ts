export { startMosquitto, type Mosquitto } from '../../bench/lib/mosquitto.js'
