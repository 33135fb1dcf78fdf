// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Property tests for the escrow's accounting. Forge drives ChannelsHandler with random sequences of
 * open / openWithAuthorization / topUp / claim / close / requestClose / withdraw / time warps by buyers,
 * sellers and strangers, valid and invalid; the handler checks every outcome against its model, and after
 * every call the invariant below checks that:
 *   - the escrow's token balance equals the sum over open channels of (deposit - claimed), read from the
 *     contract itself;
 *   - tokens are conserved (everything minted is held by an actor or the escrow);
 *   - the contract's channels equal the model's;
 *   - nobody is paid more than they are entitled to: a seller at most min(highest voucher its signer
 *     issued, deposit) per channel and exactly what was claimed, a payer exactly its refunds of
 *     deposit - claimed on closed channels, a stranger nothing.
 * test_seeded_random_walk runs the same handler along a fixed pseudo-random sequence and checks that every
 * action both succeeded and failed at least once, so the campaign is known to reach the interesting paths.
 */

import {Test, FuzzSelector} from "../utils/Test.sol";
import {OpenSeedChannels} from "../../src/OpenSeedChannels.sol";
import {TestUSDC} from "../../src/TestUSDC.sol";
import {ChannelsHandler} from "./ChannelsHandler.sol";

contract EscrowInvariants is Test {
    OpenSeedChannels internal escrow;
    TestUSDC internal usdc;
    ChannelsHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        usdc = new TestUSDC();
        escrow = new OpenSeedChannels(address(usdc), 15 minutes);
        handler = new ChannelsHandler(escrow, usdc);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = ChannelsHandler.open.selector;
        selectors[1] = ChannelsHandler.topUp.selector;
        selectors[2] = ChannelsHandler.claim.selector;
        selectors[3] = ChannelsHandler.close.selector;
        selectors[4] = ChannelsHandler.requestClose.selector;
        selectors[5] = ChannelsHandler.withdraw.selector;
        selectors[6] = ChannelsHandler.warp.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: selectors});
    }

    /// One invariant function (forge runs a campaign per function) checking all the properties.
    function invariant_escrow_accounting() public view {
        _checkAll();
    }

    function test_seeded_random_walk() public {
        bytes32 seed = keccak256("OpenSeed escrow random walk");
        for (uint256 i = 0; i < 600; i++) {
            seed = keccak256(abi.encode(seed));
            uint256 r = uint256(seed);
            uint256 a = uint256(keccak256(abi.encode(seed, 1)));
            uint256 b = uint256(keccak256(abi.encode(seed, 2)));
            uint256 c = uint256(keccak256(abi.encode(seed, 3)));
            uint256 action = r % 14; // weights: opens and redeems more often than the rest
            if (action < 3) handler.open(r >> 8, a, b, c, r >> 16);
            else if (action < 5) handler.topUp(a, b, c);
            else if (action < 8) handler.claim(a, b, c, r >> 24);
            else if (action < 9) handler.close(a, b, c, r >> 24);
            else if (action < 11) handler.requestClose(a, b);
            else if (action < 13) handler.withdraw(a, b);
            else handler.warp(a);
            _checkAll();
        }
        string[6] memory names = ["open", "topUp", "claim", "close", "requestClose", "withdraw"];
        for (uint256 i = 0; i < names.length; i++) {
            bytes32 k = keccak256(bytes(names[i]));
            vm.assertGt(handler.okCalls(k), 0, string.concat(names[i], " never succeeded"));
            vm.assertGt(handler.failedCalls(k), 0, string.concat(names[i], " never failed"));
        }
    }

    function _checkAll() internal view {
        uint256 n = handler.channelCount();
        uint256 liabilities;
        uint256[7] memory sellerCap;
        uint256[7] memory sellerClaimed;
        uint256[7] memory payerRefunds;
        for (uint256 i = 0; i < n; i++) {
            ChannelsHandler.Model memory m = handler.model(i);
            (address p, address s, address g, bytes32 cm, uint128 d, uint128 cl, uint64 ca, bool cd) =
                escrow.getChannel(m.id);
            cm;
            vm.assertEq(p, m.payer, "payer");
            vm.assertEq(s, m.seller, "seller");
            vm.assertEq(g, vm.addr(m.signerKey), "signer");
            vm.assertEq(d, m.deposit, "deposit");
            vm.assertEq(cl, m.claimed, "claimed");
            vm.assertEq(ca, m.closeAt, "closeAt");
            vm.assertEq(cd, m.closed, "closed");
            vm.assertEq(escrow.lastNonce(m.id), m.nonce, "nonce");
            vm.assertLe(cl, d, "claimed <= deposit");
            vm.assertLe(cl, m.maxSigned, "claimed <= highest voucher signed");
            if (!cd) liabilities += d - cl;
            else payerRefunds[_idx(p)] += d - cl;
            uint256 sIdx = _idx(s);
            sellerCap[sIdx] += m.maxSigned < d ? m.maxSigned : d;
            sellerClaimed[sIdx] += cl;
        }
        vm.assertEq(usdc.balanceOf(address(escrow)), liabilities, "escrow balance == open channels' deposit - claimed");

        uint256 held = usdc.balanceOf(address(escrow));
        for (uint256 i = 0; i < 7; i++) {
            address a = handler.actors(i);
            held += usdc.balanceOf(a);
            uint256 paid = handler.paidTo(a);
            if (handler.isSeller(a)) {
                vm.assertEq(paid, sellerClaimed[i], "seller paid exactly its claims");
                vm.assertLe(paid, sellerCap[i], "seller paid at most its vouchers");
            } else if (handler.isBuyer(a)) {
                vm.assertEq(paid, payerRefunds[i], "payer paid exactly its refunds");
            } else {
                vm.assertEq(paid, 0, "stranger paid nothing");
            }
        }
        vm.assertEq(held, handler.totalMinted(), "tokens conserved");
        vm.assertEq(usdc.totalSupply(), handler.totalMinted(), "no other mints");
    }

    function _idx(address a) internal view returns (uint256) {
        for (uint256 i = 0; i < 7; i++) {
            if (handler.actors(i) == a) return i;
        }
        revert("unknown actor");
    }
}
