// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Handler for the escrow's invariant test: forge calls its actions in random sequences with random
 * arguments. Each action picks actors (three buyers, two sellers, two strangers), channels and vouchers,
 * valid and invalid alike, predicts the outcome from its own model of the channels (success with exact
 * balance changes, or the exact revert), performs the call and reverts with ModelMismatch on any
 * difference. With fail_on_revert the invariant run then fails with the sequence that broke it. Ghost
 * totals (what each account was paid, the highest voucher each channel's signer issued) feed the
 * invariants in EscrowInvariants.t.sol.
 */

import {Sig} from "../utils/Sig.sol";
import {OpenSeedChannels} from "../../src/OpenSeedChannels.sol";
import {TestUSDC} from "../../src/TestUSDC.sol";

contract ChannelsHandler is Sig {
    error ModelMismatch(string action, bytes got, bytes want);

    struct Model {
        bytes32 id;
        address payer;
        address seller;
        uint256 signerKey;
        uint128 deposit;
        uint128 claimed;
        uint64 closeAt;
        bool closed;
        uint64 nonce;
        uint256 maxSigned; // highest cumulativeAmount the signer put in any voucher
    }

    uint64 public constant GRACE = 15 minutes;
    uint256 internal constant NACTORS = 7;
    bytes32 internal constant META = keccak256("invariant request");

    OpenSeedChannels public immutable escrow;
    TestUSDC public immutable usdc;

    uint256[3] internal buyerKeys = [uint256(0xB1), 0xB2, 0xB3];
    uint256[3] internal signerKeys = [uint256(0x51), 0x52, 0x53];
    uint256 internal constant WRONG_KEY = 0xBAD;
    address[NACTORS] public actors; // buyers 0..2, sellers 3..4, strangers 5..6

    Model[] internal _models;
    mapping(bytes32 => bool) internal _exists;

    uint256 public totalMinted;
    mapping(address => uint256) public paidTo; // everything the escrow transferred to an account
    mapping(bytes32 => uint256) public okCalls; // action name => successful calls
    mapping(bytes32 => uint256) public failedCalls; // action name => expected reverts

    constructor(OpenSeedChannels escrow_, TestUSDC usdc_) {
        escrow = escrow_;
        usdc = usdc_;
        for (uint256 i = 0; i < 3; i++) {
            actors[i] = vm.addr(buyerKeys[i]);
        }
        actors[3] = address(0x5E11E41);
        actors[4] = address(0x5E11E42);
        actors[5] = address(0x57A41);
        actors[6] = address(0x57A42);
        for (uint256 i = 0; i < NACTORS; i++) {
            vm.prank(actors[i]);
            usdc.approve(address(escrow_), type(uint256).max);
        }
    }

    // ---- views for the invariants -------------------------------------------------------------

    function channelCount() external view returns (uint256) {
        return _models.length;
    }

    function model(uint256 i) external view returns (Model memory) {
        return _models[i];
    }

    function isBuyer(address a) public view returns (bool) {
        return a == actors[0] || a == actors[1] || a == actors[2];
    }

    function isSeller(address a) public view returns (bool) {
        return a == actors[3] || a == actors[4];
    }

    // ---- actions ------------------------------------------------------------------------------

    struct OpenArgs {
        uint256 b; // buyer index
        address seller;
        uint256 signerKey;
        bytes32 commitment;
        uint128 amt;
        bytes32 salt;
        bool viaAuth;
    }

    function open(uint256 buyerSeed, uint256 sellerSeed, uint256 signerSeed, uint256 amount, uint256 saltSeed)
        external
    {
        OpenArgs memory o;
        o.b = buyerSeed % 3;
        // Mostly real sellers; sometimes a zero seller, which must be refused.
        o.seller = sellerSeed % 16 == 0 ? address(0) : actors[3 + sellerSeed % 2];
        o.signerKey = signerKeys[signerSeed % 3];
        o.commitment = bytes32(signerSeed);
        o.amt = amount % 32 == 0 ? 0 : uint128(bound(amount, 1, 200e6));
        o.salt = bytes32(saltSeed % 4); // few salts so that collisions happen
        o.viaAuth = (saltSeed >> 8) % 2 == 1;
        address payer = actors[o.b];
        bytes32 id = keccak256(abi.encode(block.chainid, address(escrow), payer, o.seller, o.salt));

        bytes memory want;
        if (o.seller == address(0)) want = abi.encodeWithSelector(OpenSeedChannels.ZeroAddress.selector);
        else if (o.amt == 0) want = abi.encodeWithSelector(OpenSeedChannels.ZeroAmount.selector);
        else if (_exists[id]) want = abi.encodeWithSelector(OpenSeedChannels.ChannelExists.selector, id);

        _mint(payer, o.amt);
        uint256[NACTORS + 1] memory before = _balances();
        (bool ok, bytes memory got, bytes32 gotId) = _callOpen(o);
        _outcome("open", ok, got, want);
        int256[NACTORS + 1] memory delta;
        if (ok) {
            if (gotId != id) revert ModelMismatch("open id", abi.encode(gotId), abi.encode(id));
            _exists[id] = true;
            _models.push(
                Model({
                    id: id,
                    payer: payer,
                    seller: o.seller,
                    signerKey: o.signerKey,
                    deposit: o.amt,
                    claimed: 0,
                    closeAt: 0,
                    closed: false,
                    nonce: 0,
                    maxSigned: 0
                })
            );
            delta[o.b] = -int256(uint256(o.amt));
            delta[NACTORS] = int256(uint256(o.amt));
        }
        _checkBalances("open", before, delta);
    }

    /// open() from the buyer's allowance, or openWithAuthorization() relayed by a stranger.
    function _callOpen(OpenArgs memory o) internal returns (bool ok, bytes memory got, bytes32 id) {
        address signer = vm.addr(o.signerKey);
        if (!o.viaAuth) {
            vm.prank(actors[o.b]);
            try escrow.open(o.seller, signer, o.commitment, o.amt, o.salt) returns (bytes32 r) {
                return (true, "", r);
            } catch (bytes memory reason) {
                return (false, reason, 0);
            }
        }
        bytes memory auth = _openAuth(o.b, o.seller, signer, o.commitment, o.amt, o.salt);
        vm.prank(actors[5 + o.b % 2]);
        try escrow.openWithAuthorization(
            o.seller, signer, o.commitment, o.amt, o.salt, actors[o.b], 0, block.timestamp + 1, auth
        ) returns (
            bytes32 r
        ) {
            return (true, "", r);
        } catch (bytes memory reason) {
            return (false, reason, 0);
        }
    }

    function topUp(uint256 chSeed, uint256 callerSeed, uint256 amount) external {
        (bool known, uint256 c, bytes32 id) = _pick(chSeed);
        uint256 who = _caller(callerSeed, known ? _models[c].payer : address(0));
        address caller = actors[who];
        uint128 amt = amount % 16 == 0 ? 0 : uint128(bound(amount, 1, 50e6));

        bytes memory want = _liveError(known, c, id);
        if (want.length == 0) {
            Model storage m = _models[c];
            if (caller != m.payer) {
                want = abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, caller);
            } else if (m.closeAt != 0) {
                want = abi.encodeWithSelector(OpenSeedChannels.CloseAlreadyRequested.selector, m.closeAt);
            } else if (amt == 0) {
                want = abi.encodeWithSelector(OpenSeedChannels.ZeroAmount.selector);
            }
        }

        _mint(caller, amt);
        uint256[NACTORS + 1] memory before = _balances();
        bool ok;
        bytes memory got;
        vm.prank(caller);
        try escrow.topUp(id, amt) {
            ok = true;
        } catch (bytes memory reason) {
            got = reason;
        }
        _outcome("topUp", ok, got, want);
        int256[NACTORS + 1] memory delta;
        if (ok) {
            _models[c].deposit += amt;
            delta[who] = -int256(uint256(amt));
            delta[NACTORS] = int256(uint256(amt));
        }
        _checkBalances("topUp", before, delta);
    }

    function claim(uint256 chSeed, uint256 callerSeed, uint256 cumSeed, uint256 mode) external {
        _redeem(false, chSeed, callerSeed, cumSeed, mode);
    }

    function close(uint256 chSeed, uint256 callerSeed, uint256 cumSeed, uint256 mode) external {
        _redeem(true, chSeed, callerSeed, cumSeed, mode);
    }

    function requestClose(uint256 chSeed, uint256 callerSeed) external {
        (bool known, uint256 c, bytes32 id) = _pick(chSeed);
        address caller = actors[_caller(callerSeed, known ? _models[c].payer : address(0))];
        bytes memory want = _liveError(known, c, id);
        if (want.length == 0) {
            Model storage m = _models[c];
            if (caller != m.payer) {
                want = abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, caller);
            } else if (m.closeAt != 0) {
                want = abi.encodeWithSelector(OpenSeedChannels.CloseAlreadyRequested.selector, m.closeAt);
            }
        }
        uint256[NACTORS + 1] memory before = _balances();
        bool ok;
        bytes memory got;
        vm.prank(caller);
        try escrow.requestClose(id) {
            ok = true;
        } catch (bytes memory reason) {
            got = reason;
        }
        _outcome("requestClose", ok, got, want);
        if (ok) _models[c].closeAt = uint64(block.timestamp) + GRACE;
        int256[NACTORS + 1] memory delta;
        _checkBalances("requestClose", before, delta);
    }

    function withdraw(uint256 chSeed, uint256 callerSeed) external {
        (bool known, uint256 c, bytes32 id) = _pick(chSeed);
        uint256 who = _caller(callerSeed, known ? _models[c].payer : address(0));
        address caller = actors[who];
        bytes memory want = _liveError(known, c, id);
        if (want.length == 0) {
            Model storage m = _models[c];
            if (caller != m.payer) {
                want = abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, caller);
            } else if (m.closeAt == 0) {
                want = abi.encodeWithSelector(OpenSeedChannels.CloseNotRequested.selector);
            } else if (block.timestamp < m.closeAt) {
                want = abi.encodeWithSelector(OpenSeedChannels.GracePeriodNotOver.selector, m.closeAt);
            }
        }
        uint256[NACTORS + 1] memory before = _balances();
        bool ok;
        bytes memory got;
        vm.prank(caller);
        try escrow.withdraw(id) {
            ok = true;
        } catch (bytes memory reason) {
            got = reason;
        }
        _outcome("withdraw", ok, got, want);
        int256[NACTORS + 1] memory delta;
        if (ok) {
            Model storage m = _models[c];
            m.closed = true;
            uint256 refund = m.deposit - m.claimed;
            delta[who] = int256(refund);
            delta[NACTORS] = -int256(refund);
            paidTo[caller] += refund;
        }
        _checkBalances("withdraw", before, delta);
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 0, 2 * GRACE));
    }

    // ---- claim and close share their voucher handling ------------------------------------------

    struct Voucher {
        uint256 cum;
        uint64 nonce;
        uint256 key;
        bool empty; // close without a voucher
        bytes sig;
    }

    struct Redeem {
        bool isClose;
        bool known;
        uint256 c;
        bytes32 id;
        uint256 who;
        Voucher v;
        bytes want;
        uint128 pay;
    }

    function _redeem(bool isClose, uint256 chSeed, uint256 callerSeed, uint256 cumSeed, uint256 mode) internal {
        Redeem memory x;
        x.isClose = isClose;
        (x.known, x.c, x.id) = _pick(chSeed);
        x.who = _caller(callerSeed, x.known ? _models[x.c].seller : address(0));
        x.v = _makeVoucher(x.known, x.c, x.id, cumSeed, mode, isClose);
        (x.want, x.pay) = _expectRedeem(x, actors[x.who]);
        string memory action = isClose ? "close" : "claim";

        uint256[NACTORS + 1] memory before = _balances();
        (bool ok, bytes memory got) = _callRedeem(x);
        _outcome(action, ok, got, x.want);

        int256[NACTORS + 1] memory delta;
        if (ok) {
            Model storage m = _models[x.c];
            m.claimed += x.pay;
            if (!x.v.empty) m.nonce = x.v.nonce;
            delta[x.who] = int256(uint256(x.pay));
            delta[NACTORS] = -int256(uint256(x.pay));
            paidTo[m.seller] += x.pay;
            if (isClose) {
                m.closed = true;
                uint256 refund = m.deposit - m.claimed;
                uint256 p = _index(m.payer);
                delta[p] += int256(refund);
                delta[NACTORS] -= int256(refund);
                paidTo[m.payer] += refund;
            }
        }
        _checkBalances(action, before, delta);
    }

    function _callRedeem(Redeem memory x) internal returns (bool, bytes memory) {
        vm.prank(actors[x.who]);
        if (x.isClose) {
            try escrow.close(x.id, x.v.cum, x.v.nonce, x.v.empty ? bytes32(0) : META, x.v.sig) {
                return (true, "");
            } catch (bytes memory reason) {
                return (false, reason);
            }
        }
        try escrow.claim(x.id, x.v.cum, x.v.nonce, META, x.v.sig) returns (uint128 paid) {
            if (paid != x.pay) revert ModelMismatch("claim paid", abi.encode(paid), abi.encode(x.pay));
            return (true, "");
        } catch (bytes memory reason) {
            return (false, reason);
        }
    }

    /// Random voucher: amount around the deposit, nonce equal / higher / lower than the last one,
    /// usually signed by the channel's signer, sometimes by a wrong key, high-s or (close) absent.
    function _makeVoucher(bool known, uint256 c, bytes32 id, uint256 cumSeed, uint256 mode, bool isClose)
        internal
        returns (Voucher memory v)
    {
        uint256 deposit = known ? _models[c].deposit : 100e6;
        uint64 last = known ? _models[c].nonce : 0;
        v.cum = bound(cumSeed, 0, deposit + deposit / 2 + 1);
        uint256 nonceMode = mode % 5;
        if (nonceMode == 0) v.nonce = last;
        else if (nonceMode == 1 && last > 0) v.nonce = last - 1;
        else v.nonce = last + uint64(1 + (mode >> 8) % 3);
        uint256 keyMode = (mode >> 4) % 10;
        v.key = known ? _models[c].signerKey : signerKeys[0];
        if (keyMode == 0) v.key = WRONG_KEY;
        if (isClose && keyMode == 1) {
            v.empty = true;
            v.cum = 0;
            v.nonce = 0;
            return v;
        }
        v.sig = signVoucher(v.key, address(escrow), id, v.cum, v.nonce, META);
        if (keyMode == 2) v.sig = malleate(v.sig); // refused, yet its low-s twin is one subtraction away
        // The seller now holds this voucher, so it is entitled to up to its amount.
        if (known && v.key != WRONG_KEY && _models[c].maxSigned < v.cum) _models[c].maxSigned = v.cum;
    }

    function _expectRedeem(Redeem memory x, address caller) internal view returns (bytes memory want, uint128 pay) {
        want = _liveError(x.known, x.c, x.id);
        if (want.length != 0) return (want, 0);
        Model storage m = _models[x.c];
        Voucher memory v = x.v;
        if (caller != m.seller) return (abi.encodeWithSelector(OpenSeedChannels.NotSeller.selector, caller), 0);
        if (m.closeAt != 0 && block.timestamp >= m.closeAt) {
            return (abi.encodeWithSelector(OpenSeedChannels.GracePeriodOver.selector, m.closeAt), 0);
        }
        if (v.empty) return ("", 0);
        (,, bytes32 s) = split(v.sig);
        if (uint256(s) > SECP_N / 2) return (abi.encodeWithSelector(OpenSeedChannels.InvalidSignature.selector), 0);
        if (v.key != m.signerKey) {
            return (abi.encodeWithSelector(OpenSeedChannels.WrongSigner.selector, vm.addr(v.key)), 0);
        }
        if (v.nonce < m.nonce) {
            return (abi.encodeWithSelector(OpenSeedChannels.StaleNonce.selector, v.nonce, m.nonce), 0);
        }
        uint256 cap = v.cum < m.deposit ? v.cum : m.deposit;
        pay = cap > m.claimed ? uint128(cap - m.claimed) : 0;
        if (pay == 0 && !x.isClose) return (abi.encodeWithSelector(OpenSeedChannels.NothingToClaim.selector), 0);
    }

    // ---- helpers ------------------------------------------------------------------------------

    function _openAuth(uint256 b, address seller, address signer, bytes32 commitment, uint128 amt, bytes32 salt)
        internal
        view
        returns (bytes memory)
    {
        address payer = actors[b];
        bytes32 cid = keccak256(abi.encode(block.chainid, address(escrow), payer, seller, salt));
        bytes32 nonce = keccak256(abi.encode(cid, signer, commitment));
        return signDigest(
            buyerKeys[b],
            authDigest(RECEIVE_AUTH_TH, address(usdc), payer, address(escrow), amt, 0, block.timestamp + 1, nonce)
        );
    }

    /// A known channel most of the time, an unknown id otherwise.
    function _pick(uint256 seed) internal view returns (bool known, uint256 c, bytes32 id) {
        uint256 n = _models.length;
        if (n == 0 || seed % 10 == 0) return (false, 0, keccak256(abi.encode("unknown", seed)));
        c = (seed / 10) % n;
        return (true, c, _models[c].id);
    }

    /// Three times in four the party entitled to act, otherwise any actor.
    function _caller(uint256 seed, address rightful) internal view returns (uint256) {
        if (rightful != address(0) && seed % 4 != 0) return _index(rightful);
        return (seed / 4) % NACTORS;
    }

    function _index(address a) internal view returns (uint256) {
        for (uint256 i = 0; i < NACTORS; i++) {
            if (actors[i] == a) return i;
        }
        revert ModelMismatch("unknown actor", abi.encode(a), "");
    }

    function _liveError(bool known, uint256 c, bytes32 id) internal view returns (bytes memory) {
        if (!known) return abi.encodeWithSelector(OpenSeedChannels.ChannelNotFound.selector, id);
        if (_models[c].closed) return abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id);
        return "";
    }

    function _mint(address to, uint256 amount) internal {
        if (amount == 0) return;
        usdc.mint(to, amount);
        totalMinted += amount;
    }

    function _balances() internal view returns (uint256[NACTORS + 1] memory b) {
        for (uint256 i = 0; i < NACTORS; i++) {
            b[i] = usdc.balanceOf(actors[i]);
        }
        b[NACTORS] = usdc.balanceOf(address(escrow));
    }

    function _checkBalances(string memory action, uint256[NACTORS + 1] memory before, int256[NACTORS + 1] memory delta)
        internal
        view
    {
        uint256[NACTORS + 1] memory afterB = _balances();
        for (uint256 i = 0; i <= NACTORS; i++) {
            if (int256(afterB[i]) - int256(before[i]) != delta[i]) {
                revert ModelMismatch(action, abi.encode(i, afterB[i], before[i]), abi.encode(delta[i]));
            }
        }
    }

    function _outcome(string memory action, bool ok, bytes memory got, bytes memory want) internal {
        bytes32 key = keccak256(bytes(action));
        if (want.length == 0) {
            if (!ok) revert ModelMismatch(action, got, want);
            okCalls[key]++;
            return;
        }
        if (ok || keccak256(got) != keccak256(want)) revert ModelMismatch(action, got, want);
        failedCalls[key]++;
    }
}
