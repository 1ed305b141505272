// Hardhat's in-process EVM node, as the embedded chain: chain id 31337, Hardhat's public development
// accounts (account #0 is the faucet), a block on every transaction and one every second besides, so
// confirmations come without anyone mining. Never a real network.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true, interval: 1000 },
    },
  },
};
