// SPDX-License-Identifier: Apache-2.0
// The devnet's chain set-up (scripts/devnet.sh): on a fresh anvil, deploys TestUSDC and
// OpenSeedChannels(token, closeGrace) from the committed artifacts in contracts/out (the code
// that ships) with anvil account 0, mints test USDC to the buyer wallet (account 1), and writes
// the key files the daemons use (mode 0600, never printed): the buyer's wallet (account 1) and
// the two sellers' node keys (accounts 2 and 3, which hold anvil's ETH for their claims). The
// keys are anvil's public development keys (mnemonic "test test ... junk"): only for a local chain.
// Prints shell-sourceable KEY=value lines (addresses and the deployment block) on stdout.
//
// Usage: node devnet-deploy.mjs --rpc URL --chain-id N --grace SECONDS --mint USDC --keys DIR
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'tools', 'package.json'));
let ethers;
try {
  ethers = require('ethers');
} catch (e) {
  console.error(`devnet-deploy: cannot load ethers from tools/node_modules (run scripts/setup.sh): ${e.message}`);
  process.exit(1);
}

const MNEMONIC = 'test test test test test test test test test test test junk';
const KEYS = { 'buyer-wallet.key': 1, 'seller1.key': 2, 'seller2.key': 3 };

function fail(msg) {
  console.error(`devnet-deploy: ${msg}`);
  process.exit(1);
}

const opts = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  if (!['--rpc', '--chain-id', '--grace', '--mint', '--keys'].includes(k) || i + 1 >= process.argv.length)
    fail(`unexpected argument ${k} (usage: --rpc URL --chain-id N --grace SECONDS --mint USDC --keys DIR)`);
  opts[k.slice(2)] = process.argv[i + 1];
}
for (const k of ['rpc', 'chain-id', 'grace', 'mint', 'keys']) if (!opts[k]) fail(`--${k} is required`);
const chainId = BigInt(opts['chain-id']);

function account(i) {
  return ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);
}

function artifact(name) {
  const file = path.join(root, 'contracts', 'out', `${name}.json`);
  try {
    const a = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!Array.isArray(a.abi) || typeof a.bytecode !== 'string') throw new Error('no abi or bytecode');
    return a;
  } catch (e) {
    return fail(`cannot read ${file}: ${e.message}`);
  }
}

// Written afresh each run: an old file could be a symlink or have loose permissions.
function writeKey(file, wallet) {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, `${wallet.privateKey}\n`, { mode: 0o600, flag: 'wx' });
}

async function main() {
  const provider = new ethers.JsonRpcProvider(opts.rpc, undefined, {
    staticNetwork: true,
    pollingInterval: 50,
  });
  const net = await provider.send('eth_chainId', []);
  if (BigInt(net) !== chainId) fail(`the chain at the RPC has id ${BigInt(net)}, expected ${chainId}`);
  const deployer = new ethers.NonceManager(account(0).connect(provider));

  const usdcArt = artifact('TestUSDC');
  const escrowArt = artifact('OpenSeedChannels');
  const usdc = await new ethers.ContractFactory(usdcArt.abi, usdcArt.bytecode, deployer).deploy();
  await usdc.waitForDeployment();
  const escrow = await new ethers.ContractFactory(escrowArt.abi, escrowArt.bytecode, deployer).deploy(
    await usdc.getAddress(), BigInt(opts.grace));
  const escrowReceipt = await escrow.deploymentTransaction().wait();

  const buyer = account(1);
  const amount = ethers.parseUnits(opts.mint, 6);
  await (await usdc.mint(buyer.address, amount)).wait();
  const balance = await usdc.balanceOf(buyer.address);
  if (balance < amount) fail(`minted ${amount} but the buyer holds ${balance}`);

  fs.mkdirSync(opts.keys, { recursive: true, mode: 0o700 });
  for (const [name, i] of Object.entries(KEYS)) writeKey(path.join(opts.keys, name), account(i));

  const out = {
    OPENSEED_USDC: await usdc.getAddress(),
    OPENSEED_ESCROW: await escrow.getAddress(),
    OPENSEED_ESCROW_BLOCK: String(escrowReceipt.blockNumber),
    OPENSEED_DEPLOYER: account(0).address,
    OPENSEED_BUYER_WALLET: buyer.address,
    OPENSEED_SELLER1_ADDRESS: account(2).address,
    OPENSEED_SELLER2_ADDRESS: account(3).address,
  };
  for (const [k, v] of Object.entries(out)) console.log(`${k}=${v}`);
  provider.destroy();
}

main().catch((e) => fail(e.shortMessage || e.message));
